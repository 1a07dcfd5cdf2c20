"""sectioncls: cut Chinese annual work reports into units and tag them."""

__version__ = "0.1.0"
