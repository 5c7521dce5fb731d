# The types of the C module _setns.c (built by build.sh, git-ignored), for the type checker.

def setns(fd: int, nstype: int, /) -> None:
    """Move the calling thread into the namespace `fd` refers to; OSError on failure."""
