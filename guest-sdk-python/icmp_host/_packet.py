"""The request options every built-in function takes as `**kwargs`, as in
icmplib (`payload`, `payload_size`, `traffic_class`), plus `ttl`,
`dont_fragment` and `interface`."""

from .models import DEFAULT_PAYLOAD_SIZE, DEFAULT_TTL, ICMPRequest
from .network import OpenOptions, mode_of
from .utils import family_of


class Packet:
    """Validated request options."""

    KEYS = ("payload", "payload_size", "traffic_class", "ttl", "dont_fragment",
            "interface")

    def __init__(self, function, source, family, privileged, kwargs, extra=()):
        unknown = set(kwargs) - set(self.KEYS) - set(extra)
        if unknown:
            raise TypeError(
                f"{function}() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        self.source = source
        self.family = family
        self.mode = mode_of(privileged)
        self.payload = kwargs.get("payload")
        if self.payload is not None:
            self.payload = bytes(self.payload)
        self.payload_size = kwargs.get("payload_size", DEFAULT_PAYLOAD_SIZE)
        self.traffic_class = kwargs.get("traffic_class", 0)
        self.ttl = kwargs.get("ttl", DEFAULT_TTL)
        self.dont_fragment = bool(kwargs.get("dont_fragment", False))
        self.interface = kwargs.get("interface")
        for name, value, top in (("payload_size", self.payload_size, 1 << 32),
                                 ("traffic_class", self.traffic_class, 256),
                                 ("ttl", self.ttl, 256)):
            if not isinstance(value, int) or not 0 <= value < top:
                raise ValueError(f"{name} must be an integer in 0..{top - 1}, not {value!r}")
        if family not in (None, 4, 6):
            raise ValueError(f"family must be None, 4 or 6, not {family!r}")

    @property
    def size(self):
        """Payload bytes per request."""
        return len(self.payload) if self.payload is not None else self.payload_size

    def open_options(self, family):
        """Socket options for `family`; a source of the other family is
        left out (it serves the hosts of its own family)."""
        source = self.source if self.source and family_of(self.source) == family else None
        return OpenOptions(family, source, self.mode, self.interface)

    def request(self, destination, id, sequence, ttl=None):
        """An echo request with these options."""
        return ICMPRequest(destination, id, sequence, payload=self.payload,
                           payload_size=self.payload_size,
                           ttl=self.ttl if ttl is None else ttl,
                           traffic_class=self.traffic_class,
                           dont_fragment=self.dont_fragment)
