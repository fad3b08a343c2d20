import net from 'node:net';

/**
 * The client a per-address limit counts a connection, subscription or write against
 * (MAX_CONNECTIONS_PER_ADDRESS, MAX_SUBSCRIPTIONS_PER_ADDRESS, MUTATIONS_PER_MINUTE_PER_IP).
 * An IPv4 address is one client, also when it arrives IPv4-mapped (`::ffff:a.b.c.d`, as
 * on a dual-stack socket). An IPv6 address counts by its /64: a home line or a single host
 * is given at least a /64 (RFC 6177) and may use any of its 2^64 addresses, so keyed by
 * the whole address the limits would not hold against one client at all. Anything else
 * (no address: a closed socket) is kept as it is.
 */
export function clientKey(address: string): string {
  if (net.isIPv4(address)) return address;
  const unzoned = address.split('%')[0];
  if (!net.isIPv6(unzoned)) return address;
  const groups = ipv6Groups(unzoned.toLowerCase());
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  }
  return `${groups
    .slice(0, 4)
    .map((g) => g.toString(16))
    .join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a dotted IPv4 tail as two groups). */
function ipv6Groups(address: string): number[] {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const parse = (part: string | undefined): number[] => {
    if (!part) return [];
    return part.split(':').flatMap((group) => {
      if (!group.includes('.')) return [parseInt(group, 16)];
      const [a, b, c, d] = group.split('.').map(Number);
      return [(a << 8) | b, (c << 8) | d];
    });
  };
  const first = parse(head);
  const last = parse(tail);
  const zeros = tail === undefined ? [] : Array.from({ length: 8 - first.length - last.length }, () => 0);
  return [...first, ...zeros, ...last];
}
