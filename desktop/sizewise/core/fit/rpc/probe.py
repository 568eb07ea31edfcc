"""Ask an rpc-server how much memory it has free — the figure llama.cpp itself splits layers by.

The RPC protocol (ggml-rpc.cpp, protocol 7.x, in the llama.cpp that scripts/native-tools.sh builds) gives it
cheaply: a ``HELLO`` (command 14, 24 bytes of connection capabilities, all zero here: no transport upgrade) answered
with the server's version, then ``GET_DEVICE_MEMORY`` (command 11, a u32 device index) answered with free and total
bytes as two u64. Every message is ``command byte | u64 size | payload`` and every reply ``u64 size | payload``,
little-endian. The whole exchange is bounded by ``timeout`` seconds, so a silent or wrong server costs at most that;
callers on a GUI thread must run it elsewhere (the CLI is the only caller).
"""

from __future__ import annotations

import socket
import struct

CMD_GET_DEVICE_MEMORY = 11
CMD_HELLO = 14
CONN_CAPS_SIZE = 24
PROTO_MAJOR = 7
HELLO_REPLY_SIZE = 4 + CONN_CAPS_SIZE  # major, minor, patch, padding, capabilities


class RpcProbeError(Exception):
    """The server did not answer as an rpc-server of this protocol (the message says what went wrong)."""


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise RpcProbeError("the server closed the connection")
        data += chunk
    return data


def _call(sock: socket.socket, cmd: int, payload: bytes, reply_size: int) -> bytes:
    sock.sendall(struct.pack("<BQ", cmd, len(payload)) + payload)
    (size,) = struct.unpack("<Q", _recv_exact(sock, 8))
    if size != reply_size:
        raise RpcProbeError(f"it answered {size} bytes where an rpc-server answers {reply_size}")
    return _recv_exact(sock, size)


def split_endpoint(endpoint: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as (host, port); ValueError when it is not one."""
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{endpoint}' is not host:port")
    return host.strip("[]"), int(port)


def read_free_memory(endpoint: str, timeout: float = 3.0, device: int = 0) -> tuple[int, int]:
    """(free, total) bytes that the rpc-server at ``host:port`` reports for its device ``device``."""
    host, port = split_endpoint(endpoint)
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            hello = _call(sock, CMD_HELLO, bytes(CONN_CAPS_SIZE), HELLO_REPLY_SIZE)
            if hello[0] != PROTO_MAJOR:
                raise RpcProbeError(f"it speaks RPC protocol {hello[0]}.{hello[1]}, this reader {PROTO_MAJOR}.x")
            free, total = struct.unpack("<QQ", _call(sock, CMD_GET_DEVICE_MEMORY, struct.pack("<I", device), 16))
    except TimeoutError as exc:
        raise RpcProbeError(f"no answer in {timeout:g} s") from exc
    except OSError as exc:
        raise RpcProbeError(exc.strerror or str(exc)) from exc
    return free, total
