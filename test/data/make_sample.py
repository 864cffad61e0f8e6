#!/usr/bin/env python3
"""Generates the built-in demo sample (products.csv, events.csv): a small shop whose
customers each prefer one or two departments, with skewed product popularity and
view/cart/purchase events. Deterministic (fixed seed); the CSVs are committed, this
script documents how they were made: python3 test/data/make_sample.py test/data"""
import csv
import random
import sys

random.seed(20261123)
out = sys.argv[1] if len(sys.argv) > 1 else "."

departments = {
    "Electronics": (["Wireless", "Bluetooth", "USB-C", "Noise-Cancelling", "Smart", "Portable", "4K"],
                    ["Headphones", "Charger", "Speaker", "Mouse", "Keyboard", "Monitor", "Power Bank", "Webcam"], (9, 400)),
    "Kitchen": (["Stainless", "Non-Stick", "Cast Iron", "Bamboo", "Glass", "Ceramic", "Electric"],
                ["Frying Pan", "Kettle", "Knife Set", "Cutting Board", "Blender", "Coffee Grinder", "Mixing Bowls"], (6, 180)),
    "Books": (["The Quiet", "A Short History of", "Learning", "The Art of", "Cooking with", "Notes on"],
              ["Rivers", "Databases", "Patience", "Gardens", "Algorithms", "Mountains", "Bread"], (8, 45)),
    "Sports": (["Trail", "Pro", "Lightweight", "Waterproof", "Adjustable", "Carbon"],
               ["Running Shoes", "Yoga Mat", "Dumbbells", "Water Bottle", "Cycling Gloves", "Tennis Racket"], (12, 250)),
    "Toys": (["Wooden", "Magnetic", "Glow-in-the-Dark", "Remote-Control", "Puzzle", "Building"],
             ["Blocks", "Car", "Robot", "Train Set", "Dinosaur", "Board Game"], (7, 120)),
    "Beauty": (["Organic", "Hydrating", "Vitamin C", "Matte", "Fragrance-Free", "Herbal"],
               ["Face Serum", "Lip Balm", "Shampoo", "Sunscreen", "Hand Cream", "Face Mask"], (5, 90)),
}

products = []  # (sku, name, department, price)
for d, (adjs, nouns, (lo, hi)) in departments.items():
    names = set()
    while len(names) < 30:
        names.add(f"{random.choice(adjs)} {random.choice(nouns)}")
    for n in sorted(names):
        sku = f"{d[:3].upper()}-{1000 + len(products):04d}"
        products.append((sku, n, d, round(random.uniform(lo, hi), 2)))

by_dept = {d: [p for p in products if p[2] == d] for d in departments}
# Zipf-like popularity inside each department.
weights = {d: [1.0 / (r + 1) ** 0.9 for r in range(len(ps))] for d, ps in by_dept.items()}
for d in departments:
    random.shuffle(weights[d])

events = []
dept_names = list(departments)
for c in range(1, 801):
    cust = f"C{c:05d}"
    prefs = random.sample(dept_names, 2 if random.random() < 0.4 else 1)
    n_sessions = max(1, int(random.paretovariate(1.6) * 3))
    for _ in range(min(n_sessions, 40)):
        d = random.choice(prefs) if random.random() < 0.9 else random.choice(dept_names)
        p = random.choices(by_dept[d], weights=weights[d])[0]
        ts = f"2026-{random.randint(1, 10):02d}-{random.randint(1, 28):02d} {random.randint(8, 22):02d}:{random.randint(0, 59):02d}"
        events.append((cust, p[0], "view", ts))
        if random.random() < 0.35:
            events.append((cust, p[0], "cart", ts))
            if random.random() < 0.6:
                events.append((cust, p[0], "purchase", ts))

with open(f"{out}/products.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["sku", "name", "department", "price"])
    w.writerows(products)
with open(f"{out}/events.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["customer_id", "sku", "event", "ts"])
    w.writerows(sorted(events, key=lambda e: e[3]))
print(len(products), "products,", len(events), "events")
