// The simulated network in one import, for scenario tests:
//
//   const net = new Network({ seed, label: "direct via relay" });
//   const nat = net.addNat("home", "198.51.100.1", symmetric);
//   const laptop = net.addHost("laptop", "192.168.1.10", nat.inside);
//   const relay = new TurnRelayNode(net, net.addHost("relay", "192.0.2.10"), { realm, secrets });
//   const a = laptop.bind(myEndpoint, 51820);          // any SimEndpoint (node.ts)
//   net.act((now) => machine.connect(now));            // a command, then every endpoint drained
//   net.runUntil(() => done(), 30_000);                // virtual time; a.events holds pollEvent()s
//   expect(ok, net.where()).toBe(true);                // the seed, to replay
//
// and runSeeds (scenario.ts) to run it over many seeds.

export * from "./constants.js";
export * from "./nat.js";
export * from "./network.js";
export * from "./node.js";
export * from "./portal.js";
export * from "./scenario.js";
export * from "./turn.js";
