"""teamd-shim: a LACP speaker standing in for SONiC teamd, built for hitless handover."""

__version__ = "0.1.0"
