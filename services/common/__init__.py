"""Code shared by the qunyun services, one module per concept."""
