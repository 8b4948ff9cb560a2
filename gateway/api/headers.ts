/** No framing by other sites (clickjacking the action buttons), no MIME sniffing, no referrer leaks. */
export const SECURITY_HEADERS = {
  'x-frame-options': 'DENY',
  'content-security-policy': "frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
} as const;
