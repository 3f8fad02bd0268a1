"""rtnetlink for minins, with nothing but ``AF_NETLINK`` sockets of the standard library.

Three layers, each importable on its own:

* :mod:`minins.netlink.codec` -- the wire format, pure (bytes in, messages out and back);
* :mod:`minins.netlink.sock` -- the socket: sequence numbers, reply matching, ACKs, errors
  (:class:`~minins.netlink.sock.NetlinkError`), sockets inside another network namespace;
* the operations: :mod:`~minins.netlink.link` (links, veth pairs, bridges, vlan, macvlan,
  macvtap, namespaces, hairpin), :mod:`~minins.netlink.addr` (addresses),
  :mod:`~minins.netlink.route` (routes).

The strategies that set up a container's network on top of them are in :mod:`minins.network`.
Nothing is imported here, so that ``import minins.netlink.codec`` stays cheap.
"""
