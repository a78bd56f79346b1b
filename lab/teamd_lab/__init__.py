"""The lab of teamd-hitless: namespaces, an Open vSwitch partner, the PDU recorder, the demo.

Its own distribution (lab/pyproject.toml): it drives and judges the product, the product never
imports it, and the product image does not hold it."""
