import { makeTarget, dataIn, senseOf, cdb10 } from './scsi-fixtures.js';
const f = makeTarget();
console.log(dataIn(await f.run([0x12,0,0,0,96,0])).toString('hex'));
console.log(dataIn(await f.run([0x12,1,0x83,0,255,0])).toString('hex'));
console.log(await f.run(cdb10(0x2a,0,1), {data: Buffer.alloc(512, 7)}));
console.log(dataIn(await f.run(cdb10(0x28,0,1))).subarray(0,8));
console.log(senseOf(await f.run(cdb10(0x28,0x7fffffff,1))));
console.log(senseOf(await f.run([0xff,0,0,0,0,0])));
