// Package lab builds an impaired network inside the process: two network
// namespaces, "client" and "server", joined by a userspace link emulator between two
// TUN devices. Each direction of the link drops, delays, jitters, reorders,
// duplicates, corrupts and rate-limits packets as its Impair says, from a seeded
// random source, and counts what it did.
//
// # Why userspace
//
// Many kernels (this project's CI among them, and many containers and cloud VMs) have
// no netem. TUN devices hand every IP packet to the process, so the emulator sees,
// decides and counts each packet itself: the injected counts are exact, and the same
// seed gives the same decisions.
//
// # The line
//
// Each TUN device sits behind a tbf qdisc at a line rate (Config.Line, DefaultLine):
// the namespace's kernel hands the emulator packets no faster than it reads them, so
// a sender faster than that blocks on its send buffer, as in front of a real NIC,
// instead of the device's queue dropping packets before the emulator sees them. The
// line is not the link: the link's rate, queue and tail drop (Impair) come after it.
//
// # Offloads
//
// The TUN devices are opened with IFF_VNET_HDR and TUNSETOFFLOAD (TSO4/6, and USO4/6
// where the kernel has them, 6.2 on): one read carries a TCP or UDP super-packet of up
// to 64 KiB. The reader cuts it into its packets, each with its own headers and
// checksum, and hands them to the link one by one, so every packet still gets its own
// fate and counts once; a corrupted packet's checksum is made whole before its bit is
// flipped. The writer joins consecutive packets that passed back into super-packets.
// Config.NoOffload reads and writes one packet per call instead. The reader of each
// device runs on a thread of its own at a raised priority, woken by the kernel
// (poll(2)), since a device drops what its reader has not taken. Its system calls
// are too short for Go's scheduler to lend its processor to other goroutines, so
// while a lab is open GOMAXPROCS is raised by one per reader: the program's senders
// and receivers keep the processors they had.
//
// # Two hosts without an emulator
//
// A Pair is the other topology: two namespaces joined by a veth pair, kernel to
// kernel, for tests that need a peer on another host (remote mode) rather than an
// impaired link. It is configured over netlink (github.com/vishvananda/netlink).
//
// # Privileges
//
// Creating namespaces and TUN devices needs CAP_NET_ADMIN (root). Without it New
// returns an error wrapping os.ErrPermission that says what is missing.
//
// # Invariants
//
// Namespaces are held by file descriptors, not named mounts: they vanish with the
// process. A socket is opened inside a namespace by a goroutine locked to its OS
// thread, which switches back before unlocking (or never unlocks if it cannot), and
// is then used from anywhere. Everything New creates, Close removes.
package lab
