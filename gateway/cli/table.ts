/**
 * Plain-text tables for the member commands (`blockgate exports`, `sessions`…): a header
 * row, columns padded to their widest cell, two spaces between columns, nothing drawn —
 * easy to read and to cut with awk. Cells are single-line; an empty table says so.
 * (Hand-written: the libraries for this draw boxes and wrap, neither wanted here.)
 */
export type Cell = string | number | null | undefined;

export function renderTable(head: readonly string[], rows: ReadonlyArray<readonly Cell[]>, empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`;
  const text = [head, ...rows].map((r) => head.map((_, i) => oneLine(r[i])));
  const widths = head.map((_, i) => Math.max(...text.map((r) => [...r[i]!].length)));
  return (
    text
      .map((r) =>
        r
          .map((c, i) => (i === r.length - 1 ? c : c + ' '.repeat(widths[i]! - [...c].length)))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

function oneLine(cell: Cell): string {
  if (cell === null || cell === undefined) return '-';
  return String(cell).replace(/\s*\n\s*/g, ' ');
}
