"""`python -m tools.platform_double`: serve the double in the foreground."""

from tools.platform_double.server import main

main()
