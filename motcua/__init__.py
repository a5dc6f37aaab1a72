"""The operator's side of motcua: the command line, the local stack and its gateway."""
