"""qunyun: the backend community operators use to run chat groups."""
