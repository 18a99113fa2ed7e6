#!/usr/bin/env python3
"""Writes a realistic TOML document of about SIZE bytes (default 1 MiB) to stdout.

Many fly.toml-like sections: tables, arrays of tables, dotted keys, inline tables, strings with
escapes and non-ASCII, multi-line strings, arrays, integers, floats, booleans, dates, comments.
Deterministic (fixed seed), so runs are comparable.
"""
import random
import sys

size = int(sys.argv[1]) if len(sys.argv) > 1 else 1 << 20
rng = random.Random(42)
words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]
out = ['# Generated benchmark document\napp = "bench-app"\nprimary_region = "ams"\n\n']
total = len(out[0])
i = 0
while total < size:
    w = rng.choice(words)
    parts = []
    parts.append(f"[app_{i}]\n")
    parts.append(f'name = "{w}-{i}"\n')
    parts.append(f'description = "service {w} \\"quoted\\" tab\\t unicode \\u00e9 caf\u00e9 #{i}"\n')
    parts.append(f"port = {rng.randint(1, 65535)}\n")
    parts.append(f"weight = {rng.random() * 1000:.6f}\n")
    parts.append(f"big = {rng.randint(-2**62, 2**62):_}\n" if i % 3 == 0 else f"mask = 0x{rng.randint(0, 2**31):x}\n")
    parts.append(f"enabled = {'true' if i % 2 else 'false'}\n")
    parts.append(f"created = 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z\n")
    parts.append(f"tags = [{', '.join(repr(rng.choice(words)).replace(chr(39), chr(34)) for _ in range(5))}]\n")
    parts.append(f"matrix = [[1, 2, 3], [4.5, 5.5], [\"x\", 'y']]  # mixed\n")
    parts.append(f'env.LOG_LEVEL = "info"\nenv.PATH_{i} = \'/usr/local/bin:/usr/bin\'\n')
    parts.append(f"limits = {{ cpu = {rng.randint(1, 8)}, memory_mb = {rng.choice([256, 512, 1024])}, soft = true }}\n")
    if i % 4 == 0:
        parts.append('script = """\nset -e\necho "starting" \\\n  now\n"""\n')
    parts.append(f"\n[[app_{i}.ports]]\nport = 80\nhandlers = [\"http\"]\n\n[[app_{i}.ports]]\nport = 443\nhandlers = [\"tls\", \"http\"]\n\n")
    parts.append(f"[app_{i}.checks.health]\ngrace_period = \"10s\"\ninterval = '15s'\nmethod = \"GET\"\npath = \"/health\"\n\n")
    chunk = "".join(parts)
    out.append(chunk)
    total += len(chunk.encode())
    i += 1
sys.stdout.write("".join(out))
