#!/usr/bin/env python3
"""Builds sanctions_labelled.tsv, the labelled set the screener is tuned and measured on.

Deterministic (fixed seed); run from the repository root:
    python3 crates/mizan-compliance/tests/data/generate_labelled.py

Columns: label (positive/negative), kind (the variant applied, or the culture of a
negative), expected ent_num (`-` for negatives), query.

Positives are real list names (primary names and aliases) with one kind of variant
applied. Negatives are first/last-name combinations from many cultures, kept only if
no list name (primary or alias) holds all of their tokens and none of them holds all
tokens of a list name, after lowercasing, stripping punctuation and diacritics and
folding the commonest transliteration variants: they are not on the list, not even as
a partial name.
"""
import csv
import random
import re
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
OUT = Path(__file__).resolve().parent / "sanctions_labelled.tsv"
rng = random.Random(20261121)


def read(name):
    with open(ROOT / "data" / "ofac" / name, encoding="utf-8", newline="") as f:
        return [r for r in csv.reader(f) if len(r) > 1]


sdn = read("sdn.csv")
alt = read("alt.csv")
kind_of = {r[0]: (r[2].strip() if r[2].strip() != "-0-" else "entity") for r in sdn}
names = [(r[0], r[1]) for r in sdn] + [(r[0], r[3]) for r in alt]

FOLD = {
    "mohammed": "muhammad", "mohamed": "muhammad", "mohammad": "muhammad",
    "muhamad": "muhammad", "mohamad": "muhammad", "ahmed": "ahmad", "hassan": "hasan",
    "hussein": "husayn", "husain": "husayn", "hussain": "husayn", "yousef": "yusuf",
    "youssef": "yusuf", "omar": "umar", "khaled": "khalid", "abdallah": "abdullah",
}
DROP = {"al", "el", "bin", "ibn", "de", "del", "la", "y", "the", "of", "and"}


def key_tokens(name):
    name = unicodedata.normalize("NFKD", name)
    name = "".join(c for c in name if not unicodedata.combining(c)).lower()
    name = re.sub(r"['.]", "", name)
    toks = [FOLD.get(t, t) for t in re.split(r"[^a-z0-9]+", name) if t]
    return frozenset(t for t in toks if t not in DROP)


list_sets = [key_tokens(n) for _, n in names]
by_token = {}
for i, s in enumerate(list_sets):
    for t in s:
        by_token.setdefault(t, []).append(i)


def on_list(query):
    q = key_tokens(query)
    if not q:
        return True
    for t in q:
        for i in by_token.get(t, []):
            if q <= list_sets[i] or list_sets[i] <= q:
                return True
    return False


def split_individual(name):
    """'LAST, First Middle' -> (last, [given...]) or None."""
    if "," not in name:
        return None
    last, given = name.split(",", 1)
    given = given.strip().split()
    if not given or not last.strip():
        return None
    return last.strip(), given


def title(s):
    return " ".join(w.capitalize() for w in s.split())


def natural(name):
    parts = split_individual(name)
    if parts is None:
        return name
    last, given = parts
    return f"{' '.join(given)} {title(last)}"


individuals = [(e, n) for e, n in names if kind_of[e] == "individual" and split_individual(n)]
others = [(e, n) for e, n in names if kind_of[e] != "individual" and len(n.split()) >= 2]

rows = []


def add(kind, ent, query):
    query = query.strip()
    if query and "\t" not in query:
        rows.append(("positive", kind, ent, query))


def pick(pool, count, ok=lambda e, n: True):
    chosen, seen = [], set()
    candidates = pool[:]
    rng.shuffle(candidates)
    for e, n in candidates:
        if e in seen or not ok(e, n):
            continue
        seen.add(e)
        chosen.append((e, n))
        if len(chosen) == count:
            break
    return chosen


def long_enough(e, n):
    return sum(1 for t in re.split(r"[^A-Za-z]+", n) if len(t) >= 3) >= 2


# word order: "First Middle Last" for people, shuffled words for others
for e, n in pick(individuals, 40, long_enough):
    add("word_order", e, natural(n))
for e, n in pick(others, 10, long_enough):
    words = n.replace(",", "").split()
    rng.shuffle(words)
    add("word_order", e, " ".join(words))

# punctuation: commas and periods off, hyphens to spaces or spaces to hyphens
for e, n in pick(individuals + others, 50, long_enough):
    q = n.replace(",", "").replace(".", "")
    q = q.replace("-", " ") if "-" in q else q.replace(" ", "-", 1)
    add("punctuation", e, q + ".")

# case
for i, (e, n) in enumerate(pick(individuals + others, 40, long_enough)):
    q = natural(n)
    q = q.lower() if i % 3 == 0 else q.upper() if i % 3 == 1 else "".join(
        c.upper() if rng.random() < 0.5 else c.lower() for c in q)
    add("case", e, q)

# diacritics
ACCENT = {"a": "á", "e": "é", "i": "í", "o": "ö", "u": "ü", "n": "ñ", "c": "ç",
          "A": "Á", "E": "É", "I": "Í", "O": "Ö", "U": "Ü", "N": "Ñ", "C": "Ç"}
for e, n in pick(individuals + others, 50, long_enough):
    q = "".join(ACCENT.get(c, c) if rng.random() < 0.35 else c for c in natural(n))
    add("diacritics", e, q)


# dropped middle names: people with 2+ given names, keep the first given and the last
def has_middle(e, n):
    parts = split_individual(n)
    return parts is not None and len(parts[1]) >= 2 and len(parts[1][0]) >= 3 and len(parts[0]) >= 3


for e, n in pick(individuals, 50, has_middle):
    last, given = split_individual(n)
    add("dropped_middle", e, f"{given[0]} {title(last)}")


# typos
def typo(word):
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(["sub", "del", "ins", "swap"])
    letter = rng.choice("aeioulnrst")
    if op == "sub":
        return word[:i] + letter + word[i + 1:]
    if op == "del":
        return word[:i] + word[i + 1:]
    if op == "ins":
        return word[:i] + letter + word[i:]
    return word[:i] + word[i + 1] + word[i] + word[i + 2:]


def with_typos(n, count):
    words = natural(n).split()
    long_words = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha()]
    if not long_words:
        return None
    for _ in range(count):
        i = rng.choice(long_words)
        words[i] = typo(words[i])
    return " ".join(words)


def typo_ok(e, n):
    return long_enough(e, n) and any(len(w) >= 5 for w in n.split())


for e, n in pick(individuals + others, 50, typo_ok):
    add("typo_1", e, with_typos(n, 1) or n)
for e, n in pick(individuals + others, 40, typo_ok):
    add("typo_2", e, with_typos(n, 2) or n)

# transliteration variants
VARIANTS = [
    (r"\bMUHAMMAD\b", ["Mohammed", "Mohamed", "Mohammad", "Muhamad"]),
    (r"\bMOHAMMED\b", ["Muhammad", "Mohamed", "Mohammad"]),
    (r"\bMOHAMED\b", ["Muhammad", "Mohammed"]),
    (r"\bMOHAMMAD\b", ["Muhammad", "Mohammed"]),
    (r"\bAHMAD\b", ["Ahmed"]), (r"\bAHMED\b", ["Ahmad"]),
    (r"\bABDUL ", ["Abd al ", "Abdel ", "Abd-al-"]),
    (r"\bABD AL[ -]", ["Abdul ", "Abdel ", "Abdal"]),
    (r"\bAL-", ["El-", "al ", "El "]), (r"\bAL ", ["El-", "Al-"]),
    (r"\bYUSUF\b", ["Youssef", "Yousef"]), (r"\bYOUSSEF\b", ["Yusuf"]),
    (r"\bHUSSEIN\b", ["Husain", "Hussain", "Husayn"]), (r"\bHUSAYN\b", ["Hussein", "Husain"]),
    (r"\bHASSAN\b", ["Hasan"]), (r"\bHASAN\b", ["Hassan"]),
    (r"\bOMAR\b", ["Umar"]), (r"\bUMAR\b", ["Omar"]),
    (r"\bABU\b", ["Abou"]), (r"\bKHALED\b", ["Khalid"]), (r"\bKHALID\b", ["Khaled"]),
    (r"\bMUSTAFA\b", ["Mostafa", "Moustafa"]), (r"\bIBRAHIM\b", ["Ebrahim"]),
    (r"\bABDALLAH\b", ["Abdullah"]), (r"\bABDULLAH\b", ["Abdallah"]),
    (r"\bSAID\b", ["Saeed"]), (r"\bRASHID\b", ["Rasheed"]),
    (r"\bALEKSANDR\b", ["Alexander"]), (r"\bSERGEY\b", ["Sergei"]),
    (r"\bDMITRY\b", ["Dmitri"]), (r"\bYURIY\b", ["Yuri"]), (r"\bALEKSEY\b", ["Alexei"]),
]


def translit(n):
    upper = n.upper()
    hits = [(p, v) for p, v in VARIANTS if re.search(p, upper)]
    if not hits:
        return None
    p, v = rng.choice(hits)
    return natural(re.sub(p, rng.choice(v), upper, count=1))


translit_pool = [(e, n) for e, n in individuals + others if translit(n)]
for e, n in pick(translit_pool, 60):
    add("transliteration", e, translit(n))

# negatives
CULTURES = {
    "arabic": (["Ahmed", "Omar", "Youssef", "Khaled", "Tariq", "Samir", "Nabil", "Karim", "Rami",
                "Walid", "Ziad", "Faris", "Bilal", "Hamza", "Anas", "Mazen", "Nizar", "Ghassan",
                "Basel", "Fadi", "Hani", "Imad", "Majed", "Munir", "Wael", "Yasser", "Fatima",
                "Aisha", "Layla", "Noor", "Mariam", "Huda", "Rania", "Salma", "Dina", "Amal",
                "Samira", "Yasmin", "Lina", "Hiba", "Reem", "Mohamed", "Ali", "Hassan"],
               ["Haddad", "Khoury", "Mansour", "Saleh", "Farouk", "Hamdan", "Jaber", "Khalil",
                "Masri", "Najjar", "Rahal", "Sabbagh", "Shami", "Tamimi", "Zein", "Barakat",
                "Darwish", "Fakhoury", "Habib", "Kanaan", "Maalouf", "Odeh", "Sayegh", "Toma",
                "Qasem", "Bitar", "Hijazi", "Nassif", "Awad", "Suleiman"]),
    "persian": (["Dariush", "Kourosh", "Babak", "Farhad", "Arash", "Behrouz", "Kaveh", "Mehdi",
                 "Reza", "Shirin", "Parisa", "Nasrin", "Leila", "Mahsa", "Niloufar", "Roya",
                 "Soraya", "Azadeh", "Golnar", "Siavash"],
                ["Ahmadi", "Karimi", "Rostami", "Tehrani", "Moradi", "Jafari", "Sadeghi",
                 "Hosseini", "Rahimi", "Ghorbani", "Farahani", "Shirazi", "Esfahani", "Kazemi",
                 "Azizi", "Bahrami", "Mirzaei", "Najafi", "Soltani", "Zand"]),
    "russian": (["Ivan", "Pavel", "Oleg", "Maxim", "Artem", "Kirill", "Roman", "Anton", "Boris",
                 "Gleb", "Natalia", "Olga", "Tatiana", "Irina", "Svetlana", "Ekaterina", "Anna",
                 "Elena", "Yulia", "Ksenia", "Sergei", "Dmitri"],
                ["Ivanov", "Smirnov", "Kuznetsov", "Popov", "Sokolov", "Lebedev", "Kozlov",
                 "Novikov", "Morozov", "Volkov", "Solovyov", "Vasiliev", "Zaitsev", "Pavlov",
                 "Semenov", "Golubev", "Vinogradov", "Bogdanov", "Vorobyov", "Fedorov"]),
    "chinese": (["Wei", "Na", "Jing", "Fang", "Lei", "Min", "Jie", "Yan", "Tao", "Hui",
                 "Xiaoming", "Jianguo", "Meiling", "Haoran", "Zihan", "Yuxuan", "Xinyi"],
                ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
                 "Xu", "Sun", "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo"]),
    "english": (["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda",
                 "William", "Elizabeth", "David", "Susan", "Richard", "Jessica", "Thomas", "Sarah",
                 "Charles", "Karen", "Daniel", "Emily"],
                ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
                 "Anderson", "Taylor", "Moore", "Martin", "Jackson", "Thompson", "White",
                 "Harris", "Clark", "Lewis", "Walker", "Hughes"]),
    "hispanic": (["Carlos", "Juan", "Luis", "Miguel", "Jorge", "Pedro", "Diego", "Andrés",
                  "Sofía", "Camila", "Valentina", "Lucía", "Gabriela", "José", "María"],
                 ["García", "Martínez", "Rodríguez", "López", "Hernández", "González", "Pérez",
                  "Sánchez", "Ramírez", "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Vargas"]),
    "indian": (["Rahul", "Priya", "Amit", "Sunita", "Arjun", "Deepak", "Anjali", "Vikram",
                "Kavita", "Rajesh", "Sanjay", "Pooja"],
               ["Sharma", "Patel", "Singh", "Kumar", "Gupta", "Reddy", "Iyer", "Nair", "Das",
                "Mehta", "Joshi", "Banerjee"]),
    "turkish": (["Emre", "Burak", "Elif", "Zeynep", "Mert", "Ayşe", "Murat", "Selin"],
                ["Yılmaz", "Kaya", "Demir", "Şahin", "Çelik", "Öztürk", "Aydın", "Arslan"]),
    "african": (["Chinedu", "Oluwaseun", "Amara", "Kwame", "Abebe", "Thandiwe", "Ngozi", "Kofi"],
                ["Okafor", "Adeyemi", "Mensah", "Kamau", "Mwangi", "Diallo", "Traoré", "Okonkwo"]),
    "east_asian": (["Haruto", "Yui", "Sota", "Hina", "Minjun", "Seoyeon", "Jiho", "Ren"],
                   ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Park", "Choi", "Jung"]),
}
PER_CULTURE = {"arabic": 70, "persian": 40, "russian": 40, "chinese": 30, "english": 40,
               "hispanic": 40, "indian": 25, "turkish": 20, "african": 20, "east_asian": 20}
negatives = []
seen = set()
for culture, (firsts, lasts) in CULTURES.items():
    wanted, tries = PER_CULTURE[culture], 0
    count = 0
    while count < wanted and tries < 5000:
        tries += 1
        first, last = rng.choice(firsts), rng.choice(lasts)
        if culture in ("arabic", "persian", "hispanic") and rng.random() < 0.3:
            first = f"{first} {rng.choice(firsts)}"
        q = f"{last} {first}" if culture in ("chinese",) else f"{first} {last}"
        if q in seen or len(set(q.split())) < len(q.split()) or on_list(q):
            continue
        seen.add(q)
        negatives.append(("negative", culture, "-", q))
        count += 1

with open(OUT, "w", encoding="utf-8") as f:
    f.write("# label\tkind\tent_num\tquery — generated by generate_labelled.py; do not edit\n")
    for row in rows + negatives:
        f.write("\t".join(row) + "\n")
print(f"{len(rows)} positives, {len(negatives)} negatives -> {OUT}")
