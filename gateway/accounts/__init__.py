"""People who work in Omnigate: accounts with passwords, sessions, login throttling, setup links, audit."""
