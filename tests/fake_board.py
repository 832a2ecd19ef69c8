"""An in-process board for driver tests: ``sim.device.DeviceModel`` behind a pyserial-like
transport, with injectable faults (lost, damaged or no replies; damaged requests)."""

import time


class ModelPort:
    def __init__(self, model, name="model-port"):
        self.model = model
        self.port = name
        self.timeout = 0.005
        self._rx = bytearray()
        self.drop_replies = 0       # lose the next n replies
        self.corrupt_replies = 0    # flip a bit in the next n replies
        self.corrupt_requests = 0   # flip a bit in the next n requests
        self.silent = False         # the board stopped answering
        self.writes = []

    def write(self, data):
        data = bytearray(data)
        self.writes.append(bytes(data))
        if self.silent:
            return len(data)
        if self.corrupt_requests:
            self.corrupt_requests -= 1
            data[len(data) // 2] ^= 0x04
        out = bytearray(self.model.feed(bytes(data)))
        if out and self.drop_replies:
            self.drop_replies -= 1
            return len(data)
        if out and self.corrupt_replies:
            self.corrupt_replies -= 1
            out[len(out) // 2] ^= 0x10
        self._rx += out
        return len(data)

    @property
    def in_waiting(self):
        return len(self._rx)

    def read(self, n=1):
        if not self._rx:
            time.sleep(self.timeout)
            return b""
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def close(self):
        pass
