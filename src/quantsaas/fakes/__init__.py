"""Local fake exchanges speaking each venue's real wire protocol, with fault injection."""
