/**
 * Device k of user u connects to node (u + k) % n: with 2 nodes, the pusher (device 0) sits on
 * node u % 2, device 1 on the other node and device 2 with the pusher, so every user spans both
 * nodes, half of the measured deliveries cross Redis, and each node carries half the pushers.
 */
export function spreadDevices(urls: string[]): (user: number, device: number) => string {
  return (user, device) => urls[(user + device) % urls.length]!
}
