"""Import and export: the text parser and the SymPy bridge."""
