import { startBlockgate } from '../helpers/iscsi.js';
const bg = await startBlockgate({ size: 64 * 1024 * 1024 });
console.log('URL', bg.url(0));
process.on('SIGTERM', async () => { await bg.stop(); process.exit(0); });
