"""The live ticket counter: values from the mirror, served from the cache, pushed to Velo."""
