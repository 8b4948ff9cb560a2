/**
 * The layering of DESIGN.md, checked by `npm test` (test/layout/dependencies.test.ts):
 * gateway → member → failover → fabric. Type-only imports count (tsPreCompilationDeps), as do
 * dynamic imports.
 */
module.exports = {
  forbidden: [
    {
      name: 'fabric-imports-nothing-above-it',
      comment: 'fabric/ is the data path: it knows nothing of failover sets, members or ports.',
      severity: 'error',
      from: { path: '^fabric/' },
      to: { path: '^(failover|member|gateway)/' },
    },
    {
      name: 'failover-imports-only-fabric',
      comment: 'failover/ (the control half) builds on fabric/ only: the member and its ports build on it.',
      severity: 'error',
      from: { path: '^failover/' },
      to: { path: '^(member|gateway)/' },
    },
    {
      name: 'member-does-not-import-ports',
      comment: 'member/ knows its ports through member/ports.ts; the gateway provides them.',
      severity: 'error',
      from: { path: '^member/' },
      to: { path: '^gateway/' },
    },
    {
      name: 'no-cycles',
      comment: 'No import cycles, type-only imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
