"""An authoritative DNS server on 127.0.0.1 for tests, built on dnspython.

`DNSServer(zone)` answers queries for the records in `zone` over UDP and
TCP on one ephemeral port, in a thread of its own: `zone` maps
(name, type) to a list of record texts in zone-file syntax, such as
`("example.test", "MX"): ["10 mx.example.test."]`. A name with no records
of any type gets NXDOMAIN; a known name without the asked type gets an
empty answer (NOERROR, NODATA). `servfail` names get SERVFAIL.
"""

from __future__ import annotations

import socketserver
import struct
import threading

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[tuple[str, str], list[str]]


class DNSServer:
    """Serves a fixed zone until `stop()`."""

    def __init__(self, zone: Zone, servfail: set[str] | None = None) -> None:
        self.zone = {
            (name.lower().rstrip("."), rtype.upper()): records
            for (name, rtype), records in zone.items()
        }
        self.servfail = {name.lower() for name in servfail or set()}
        self.queries: list[tuple[str, str]] = []
        self._udp, self._tcp = self._bind()
        self.port = self._udp.server_address[1]
        self._threads = [
            threading.Thread(target=server.serve_forever, daemon=True)
            for server in (self._udp, self._tcp)
        ]

    @property
    def address(self) -> str:
        """The server as a `dns.nameservers` entry: 127.0.0.1:PORT."""
        return f"127.0.0.1:{self.port}"

    def _bind(self) -> tuple[socketserver.UDPServer, socketserver.TCPServer]:
        owner = self

        class UDPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                sock.sendto(owner.answer(data, 512), self.client_address)

        class TCPHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                header = self.request.recv(2)
                if len(header) < 2:
                    return
                (length,) = struct.unpack("!H", header)
                data = b""
                while len(data) < length:
                    chunk = self.request.recv(length - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = owner.answer(data, 65535)
                self.request.sendall(struct.pack("!H", len(reply)) + reply)

        # The TCP port must equal the UDP port: try a few ephemeral ports.
        for _ in range(20):
            udp = socketserver.ThreadingUDPServer(("127.0.0.1", 0), UDPHandler)
            port = udp.server_address[1]
            try:
                socketserver.TCPServer.allow_reuse_address = True
                tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), TCPHandler)
            except OSError:
                udp.server_close()
                continue
            return udp, tcp
        raise OSError("no port free for both UDP and TCP on 127.0.0.1")

    def answer(self, data: bytes, max_size: int) -> bytes:
        """Return the wire-format response to one query."""
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text().rstrip(".").lower()
        rtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rtype))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
        elif (name, rtype) in self.zone:
            rrset = dns.rrset.from_text_list(
                question.name, 300, dns.rdataclass.IN, rtype, self.zone[(name, rtype)]
            )
            response.answer.append(rrset)
        elif not any(known == name for known, _ in self.zone):
            response.set_rcode(dns.rcode.NXDOMAIN)
        wire = response.to_wire(max_size=65535)
        if len(wire) > max_size:
            response.answer.clear()
            response.flags |= dns.flags.TC
            wire = response.to_wire()
        return wire

    def start(self) -> DNSServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)


__all__ = ["DNSServer", "Zone"]
