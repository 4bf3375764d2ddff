// Package transport is what the experiments run over: the Transport, Listener and
// Network interfaces (declared here, where they are used; the tcp and udp packages
// satisfy them without importing anything of the project), the optional
// capabilities an experiment asks for with a type assertion (TCP_INFO, drop counts,
// buffers, receive stamps, a raw byte stream, multicast groups), the adapters
// that join tcp and udp to them with the run's socket flags, and the registry:
// a transport is a leaf package plus one Register call naming what it can do
// (Caps: reliable, connected, datagrams). Experiments never ask a transport's
// name, only its Caps.
package transport
