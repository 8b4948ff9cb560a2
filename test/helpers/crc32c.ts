/**
 * CRC32C (Castagnoli) for the test initiator, written straight from its definition (RFC 7143
 * §12.1 / RFC 3385: reflected polynomial 0x82F63B78, initial value and final XOR all ones),
 * one bit at a time. Slow and obviously right: independent of the target's table-driven
 * and native implementations, which it is used to check.
 */
export function crc32c(data: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
