"""Domain verbs: the only code that writes domain rows. Each takes a Session and never commits."""
