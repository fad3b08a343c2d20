import ipaddr from 'ipaddr.js';

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
  if (!ipaddr.isValid(address)) return address;
  const parsed = ipaddr.process(address);
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const groups = (parsed as ipaddr.IPv6).parts.slice(0, 4).map((g) => g.toString(16));
  return `${groups.join(':')}::/64`;
}
