// The desk's scripts live here, one file per feature; every page also works without them.
