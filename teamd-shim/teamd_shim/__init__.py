"""teamd-shim: a LACP speaker standing in for SONiC teamd, built for hitless handover."""

from importlib.metadata import PackageNotFoundError, version

try:
    # the distribution's version: an image built with another version (containers/) reports it
    __version__ = version("teamd-hitless")
except PackageNotFoundError:  # run from a source tree without installing
    __version__ = "0.1.0"
