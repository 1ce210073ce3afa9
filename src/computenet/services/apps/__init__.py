"""The application centre: apps and their runs, the application characteristics database, the web login shell."""
