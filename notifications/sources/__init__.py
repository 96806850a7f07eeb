"""Where subscribers come from: one module per source behind one typed interface (base)."""
