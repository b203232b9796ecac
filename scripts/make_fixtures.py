"""Generate xscale's synthetic, parallel, multilingual fixture data.

    python scripts/make_fixtures.py            # writes xscale/fixtures/data/
    python scripts/make_fixtures.py --out DIR --seed 0

Everything is written by this script from a small template grammar: per-language lexicons and
sentence templates for en, de, es, fr and zh. A *meaning* (who does what to how many of which
things, where and when) is drawn once and rendered in every language, so row i of a file in one
language is the translation of row i of the English file. Labels come from the meanings (e.g. a
hypothesis that drops a detail is entailed, one that negates the action contradicts), so the tasks
are learnable, and the same words appear in the pretraining text, so tiny models pretrained on it
can transfer across languages. Output is deterministic for a given --seed.

Layout (as XTREME's download script and the GLUE/ANLI releases lay files out):
    pretrain/{en,de,es,fr,zh}.txt                    one sentence per line, parallel
    intermediate/mnli/{train,dev_matched}.tsv        GLUE MNLI tsv (English)
    intermediate/anli/R1/{train,dev}.jsonl           ANLI v1.0 jsonl (English; needs quantifiers,
                                                     negation, comparisons over several facts)
    intermediate/sst2/{train,dev}.tsv                GLUE SST-2 tsv, header `sentence<TAB>label`
    xtreme/xnli/{train,dev,test}-<lang>.tsv          premise, hypothesis, label (no header)
    xtreme/pawsx/{train,dev,test}-<lang>.tsv         sentence1, sentence2, 0/1 (no header)
    intermediate/squad/{train,dev}-v1.1.json         SQuAD v1.1 json (English)
    xtreme/squad/translate-train/squad.translate.train.en-<lang>.json
                                                     SQuAD's train set "translated" (de, es, zh)
    xtreme/xquad/xquad.<lang>.json                   XQuAD-like test files (SQuAD json)
    xtreme/{udpos,panx}/{train,dev,test}-<lang>.tsv  token TAB tag, blank line between sentences
    intermediate/ccg/{train,dev}.tsv                 token TAB CCG-style supertag (synthetic)
    intermediate/copa/{train,val}.jsonl              SuperGLUE COPA jsonl (English)
    xtreme/xcopa/test-zh.jsonl                       XCOPA jsonl
    intermediate/hellaswag/hellaswag_{train,val}.jsonl   HellaSwag jsonl
    xtreme/tatoeba/v1/tatoeba.<xxx>-eng.{<xxx>,eng}  aligned sentence files
    xtreme/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold}   BUCC 2018 layout
    xtreme/lareqa/xquad-r/<lang>.json                XQuAD-R: the XQuAD files + sentence breaks
    xtreme/mewslix/*.jsonl                           Mewsli-X release files (candidate set,
                                                     Wikipedia pairs, WikiNews test mentions)
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass, replace
from pathlib import Path

LANGS = ("en", "de", "es", "fr", "zh")
PAWS_LANGS = ("en", "de", "es", "fr")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "xscale" / "fixtures" / "data"

# ---------------------------------------------------------------------------------------------
# Lexicon. Names are shared by the Latin-script languages; zh has transliterations.
# ---------------------------------------------------------------------------------------------
NAMES = {  # name: (zh, gender)
    "Anna": ("安娜", "f"), "Tom": ("汤姆", "m"), "Maria": ("玛丽亚", "f"), "Paul": ("保罗", "m"),
    "Laura": ("劳拉", "f"), "David": ("大卫", "m"), "Sofia": ("索菲亚", "f"),
    "Lucas": ("卢卡斯", "m"), "Emma": ("艾玛", "f"), "Daniel": ("丹尼尔", "m"),
    "Clara": ("克拉拉", "f"), "Marco": ("马可", "m"), "Julia": ("朱莉娅", "f"),
    "Felix": ("费利克斯", "m"), "Nora": ("诺拉", "f"), "Leo": ("利奥", "m"), "Lena": ("莉娜", "f"),
    "Oscar": ("奥斯卡", "m"), "Elena": ("埃琳娜", "f"), "Victor": ("维克多", "m"),
}  # fmt: skip

# key: category, en, de, (es, gender), (fr, gender), (zh, measure word)
NOUNS = {
    "cat": ("animals", "cats", "Katzen", ("gatos", "m"), ("chats", "m"), ("猫", "只")),
    "dog": ("animals", "dogs", "Hunde", ("perros", "m"), ("chiens", "m"), ("狗", "只")),
    "bird": ("animals", "birds", "Vögel", ("pájaros", "m"), ("oiseaux", "m"), ("鸟", "只")),
    "horse": ("animals", "horses", "Pferde", ("caballos", "m"), ("chevaux", "m"), ("马", "匹")),
    "rabbit": ("animals", "rabbits", "Kaninchen", ("conejos", "m"), ("lapins", "m"),
               ("兔子", "只")),
    "cow": ("animals", "cows", "Kühe", ("vacas", "f"), ("vaches", "f"), ("奶牛", "头")),
    "duck": ("animals", "ducks", "Enten", ("patos", "m"), ("canards", "m"), ("鸭子", "只")),
    "sheep": ("animals", "sheep", "Schafe", ("ovejas", "f"), ("moutons", "m"), ("羊", "只")),
    "apple": ("fruits", "apples", "Äpfel", ("manzanas", "f"), ("pommes", "f"), ("苹果", "个")),
    "pear": ("fruits", "pears", "Birnen", ("peras", "f"), ("poires", "f"), ("梨", "个")),
    "orange": ("fruits", "oranges", "Orangen", ("naranjas", "f"), ("oranges", "f"),
               ("橙子", "个")),
    "lemon": ("fruits", "lemons", "Zitronen", ("limones", "m"), ("citrons", "m"), ("柠檬", "个")),
    "cherry": ("fruits", "cherries", "Kirschen", ("cerezas", "f"), ("cerises", "f"),
               ("樱桃", "颗")),
    "plum": ("fruits", "plums", "Pflaumen", ("ciruelas", "f"), ("prunes", "f"), ("李子", "个")),
    "chair": ("furniture", "chairs", "Stühle", ("sillas", "f"), ("chaises", "f"), ("椅子", "把")),
    "table": ("furniture", "tables", "Tische", ("mesas", "f"), ("tables", "f"), ("桌子", "张")),
    "bed": ("furniture", "beds", "Betten", ("camas", "f"), ("lits", "m"), ("床", "张")),
    "sofa": ("furniture", "sofas", "Sofas", ("sofás", "m"), ("canapés", "m"), ("沙发", "张")),
    "shelf": ("furniture", "shelves", "Regale", ("estanterías", "f"), ("étagères", "f"),
              ("架子", "个")),
    "car": ("vehicles", "cars", "Autos", ("coches", "m"), ("voitures", "f"), ("汽车", "辆")),
    "bike": ("vehicles", "bikes", "Fahrräder", ("bicicletas", "f"), ("vélos", "m"),
             ("自行车", "辆")),
    "bus": ("vehicles", "buses", "Busse", ("autobuses", "m"), ("bus", "m"), ("公共汽车", "辆")),
    "boat": ("vehicles", "boats", "Boote", ("barcos", "m"), ("bateaux", "m"), ("船", "艘")),
    "truck": ("vehicles", "trucks", "Lastwagen", ("camiones", "m"), ("camions", "m"),
              ("卡车", "辆")),
    "ball": ("toys", "balls", "Bälle", ("pelotas", "f"), ("balles", "f"), ("球", "个")),
    "doll": ("toys", "dolls", "Puppen", ("muñecas", "f"), ("poupées", "f"), ("娃娃", "个")),
    "kite": ("toys", "kites", "Drachen", ("cometas", "f"), ("cerfs-volants", "m"), ("风筝", "只")),
    "puzzle": ("toys", "puzzles", "Puzzles", ("rompecabezas", "m"), ("puzzles", "m"),
               ("拼图", "幅")),
    "flower": ("plants", "flowers", "Blumen", ("flores", "f"), ("fleurs", "f"), ("花", "朵")),
    "tree": ("plants", "trees", "Bäume", ("árboles", "m"), ("arbres", "m"), ("树", "棵")),
    "rose": ("plants", "roses", "Rosen", ("rosas", "f"), ("roses", "f"), ("玫瑰", "朵")),
    "tulip": ("plants", "tulips", "Tulpen", ("tulipanes", "m"), ("tulipes", "f"),
              ("郁金香", "朵")),
    "hat": ("clothes", "hats", "Hüte", ("sombreros", "m"), ("chapeaux", "m"), ("帽子", "顶")),
    "shirt": ("clothes", "shirts", "Hemden", ("camisas", "f"), ("chemises", "f"), ("衬衫", "件")),
    "coat": ("clothes", "coats", "Mäntel", ("abrigos", "m"), ("manteaux", "m"), ("外套", "件")),
    "dress": ("clothes", "dresses", "Kleider", ("vestidos", "m"), ("robes", "f"), ("裙子", "条")),
    "scarf": ("clothes", "scarves", "Schals", ("bufandas", "f"), ("écharpes", "f"),
              ("围巾", "条")),
}  # fmt: skip

CATEGORIES = {  # key: en, de, (es, gender), (fr, gender), zh
    "animals": ("animals", "Tiere", ("animales", "m"), ("animaux", "m"), "动物"),
    "fruits": ("fruits", "Früchte", ("frutas", "f"), ("fruits", "m"), "水果"),
    "furniture": ("furniture", "Möbel", ("muebles", "m"), ("meubles", "m"), "家具"),
    "vehicles": ("vehicles", "Fahrzeuge", ("vehículos", "m"), ("véhicules", "m"), "车辆"),
    "toys": ("toys", "Spielsachen", ("juguetes", "m"), ("jouets", "m"), "玩具"),
    "plants": ("plants", "Pflanzen", ("plantas", "f"), ("plantes", "f"), "植物"),
    "clothes": ("clothes", "Kleidung", ("prendas de ropa", "f"), ("vêtements", "m"), "衣服"),
}

COLORS = {  # en: de stem, es (m pl, f pl), fr (m pl, f pl), zh
    "red": ("rot", ("rojos", "rojas"), ("rouges", "rouges"), "红色"),
    "blue": ("blau", ("azules", "azules"), ("bleus", "bleues"), "蓝色"),
    "green": ("grün", ("verdes", "verdes"), ("verts", "vertes"), "绿色"),
    "black": ("schwarz", ("negros", "negras"), ("noirs", "noires"), "黑色"),
    "white": ("weiß", ("blancos", "blancas"), ("blancs", "blanches"), "白色"),
    "yellow": ("gelb", ("amarillos", "amarillas"), ("jaunes", "jaunes"), "黄色"),
    "brown": ("braun", ("marrones", "marrones"), ("marron", "marron"), "棕色"),
}

NUMBERS = {  # n: en, de, es, fr, zh
    2: ("two", "zwei", "dos", "deux", "两"),
    3: ("three", "drei", "tres", "trois", "三"),
    4: ("four", "vier", "cuatro", "quatre", "四"),
    5: ("five", "fünf", "cinco", "cinq", "五"),
    6: ("six", "sechs", "seis", "six", "六"),
    7: ("seven", "sieben", "siete", "sept", "七"),
}

# Verbs taking things as objects: en 3sg, en base, de 3sg, es 3sg, fr 3sg, zh.
VERBS = {
    "see": ("sees", "see", "sieht", "ve", "voit", "看到"),
    "buy": ("buys", "buy", "kauft", "compra", "achète", "买"),
    "sell": ("sells", "sell", "verkauft", "vende", "vend", "卖"),
    "paint": ("paints", "paint", "malt", "pinta", "peint", "画"),
    "count": ("counts", "count", "zählt", "cuenta", "compte", "数"),
    "find": ("finds", "find", "findet", "encuentra", "trouve", "找到"),
    "photograph": ("photographs", "photograph", "fotografiert", "fotografía", "photographie", "拍"),
    "watch": ("watches", "watch", "beobachtet", "observa", "observe", "观察"),
    "draw": ("draws", "draw", "zeichnet", "dibuja", "dessine", "描绘"),
    "describe": ("describes", "describe", "beschreibt", "describe", "décrit", "描述"),
    "hide": ("hides", "hide", "versteckt", "esconde", "cache", "藏"),
}

# Verbs taking a person as object (PAWS-X): en (3sg, pl, participle), de (3sg, pl, participle),
# es (3sg, pl, participle m), fr (3sg, pl, participle m), zh.
PERSON_VERBS = {
    "see": (("sees", "see", "seen"), ("sieht", "sehen", "gesehen"), ("ve", "ven", "visto"),
            ("voit", "voient", "vu"), "看见"),
    "greet": (("greets", "greet", "greeted"), ("begrüßt", "begrüßen", "begrüßt"),
              ("saluda", "saludan", "saludado"), ("salue", "saluent", "salué"), "问候"),
    "watch": (("watches", "watch", "watched"), ("beobachtet", "beobachten", "beobachtet"),
              ("observa", "observan", "observado"), ("observe", "observent", "observé"), "观察"),
    "photograph": (("photographs", "photograph", "photographed"),
                   ("fotografiert", "fotografieren", "fotografiert"),
                   ("fotografía", "fotografían", "fotografiado"),
                   ("photographie", "photographient", "photographié"), "拍摄"),
    "paint": (("paints", "paint", "painted"), ("malt", "malen", "gemalt"),
              ("pinta", "pintan", "pintado"), ("peint", "peignent", "peint"), "画"),
    "admire": (("admires", "admire", "admired"), ("bewundert", "bewundern", "bewundert"),
               ("admira", "admiran", "admirado"), ("admire", "admirent", "admiré"), "欣赏"),
    "follow": (("follows", "follow", "followed"), ("verfolgt", "verfolgen", "verfolgt"),
               ("sigue", "siguen", "seguido"), ("suit", "suivent", "suivi"), "跟踪"),
    "defend": (("defends", "defend", "defended"), ("verteidigt", "verteidigen", "verteidigt"),
               ("defiende", "defienden", "defendido"), ("défend", "défendent", "défendu"), "保护"),
    "find": (("finds", "find", "found"), ("findet", "finden", "gefunden"),
             ("encuentra", "encuentran", "encontrado"), ("trouve", "trouvent", "trouvé"), "找到"),
    "wake": (("wakes", "wake", "woken"), ("weckt", "wecken", "geweckt"),
             ("despierta", "despiertan", "despertado"), ("réveille", "réveillent", "réveillé"),
             "叫醒"),
    "hear": (("hears", "hear", "heard"), ("hört", "hören", "gehört"), ("oye", "oyen", "oído"),
             ("entend", "entendent", "entendu"), "听见"),
    "recognize": (("recognizes", "recognize", "recognized"), ("erkennt", "erkennen", "erkannt"),
                  ("reconoce", "reconocen", "reconocido"),
                  ("reconnaît", "reconnaissent", "reconnu"), "认出"),
}  # fmt: skip

PLACES = {  # en, de, es, fr, zh (used after 在)
    "garden": ("in the garden", "im Garten", "en el jardín", "dans le jardin", "花园里"),
    "kitchen": ("in the kitchen", "in der Küche", "en la cocina", "dans la cuisine", "厨房里"),
    "market": ("at the market", "auf dem Markt", "en el mercado", "au marché", "市场上"),
    "park": ("in the park", "im Park", "en el parque", "dans le parc", "公园里"),
    "school": ("at school", "in der Schule", "en la escuela", "à l'école", "学校里"),
    "station": ("at the station", "am Bahnhof", "en la estación", "à la gare", "车站"),
    "library": ("in the library", "in der Bibliothek", "en la biblioteca", "à la bibliothèque",
                "图书馆里"),
    "shop": ("in the shop", "im Laden", "en la tienda", "dans le magasin", "商店里"),
    "beach": ("on the beach", "am Strand", "en la playa", "sur la plage", "海滩上"),
    "museum": ("at the museum", "im Museum", "en el museo", "au musée", "博物馆里"),
    "farm": ("on the farm", "auf dem Bauernhof", "en la granja", "à la ferme", "农场上"),
    "village": ("in the village", "im Dorf", "en el pueblo", "au village", "村子里"),
    "harbor": ("at the harbor", "im Hafen", "en el puerto", "au port", "港口"),
}  # fmt: skip

TIMES = {  # en, de, es, fr, zh
    "morning": ("in the morning", "am Morgen", "por la mañana", "le matin", "早上"),
    "evening": ("in the evening", "am Abend", "por la tarde", "le soir", "晚上"),
    "noon": ("at noon", "am Mittag", "al mediodía", "à midi", "中午"),
    "monday": ("on Monday", "am Montag", "el lunes", "lundi", "星期一"),
    "wednesday": ("on Wednesday", "am Mittwoch", "el miércoles", "mercredi", "星期三"),
    "friday": ("on Friday", "am Freitag", "el viernes", "vendredi", "星期五"),
    "saturday": ("on Saturday", "am Samstag", "el sábado", "samedi", "星期六"),
    "sunday": ("on Sunday", "am Sonntag", "el domingo", "dimanche", "星期天"),
}
HABIT = ("every day", "jeden Tag", "todos los días", "tous les jours", "每天")

# Things that can be judged (sentiment): en, (de, article), (es, gender), (fr, gender), (zh, mw)
THINGS = {
    "film": ("film", ("Film", "der"), ("película", "f"), ("film", "m"), ("电影", "部")),
    "concert": ("concert", ("Konzert", "das"), ("concierto", "m"), ("concert", "m"),
                ("音乐会", "场")),
    "meal": ("meal", ("Essen", "das"), ("comida", "f"), ("repas", "m"), ("饭", "顿")),
    "book": ("book", ("Buch", "das"), ("libro", "m"), ("livre", "m"), ("书", "本")),
    "trip": ("trip", ("Reise", "die"), ("viaje", "m"), ("voyage", "m"), ("旅行", "次")),
    "game": ("game", ("Spiel", "das"), ("partido", "m"), ("match", "m"), ("比赛", "场")),
    "song": ("song", ("Lied", "das"), ("canción", "f"), ("chanson", "f"), ("歌", "首")),
    "party": ("party", ("Party", "die"), ("fiesta", "f"), ("fête", "f"), ("聚会", "个")),
    "show": ("show", ("Show", "die"), ("espectáculo", "m"), ("spectacle", "m"), ("演出", "场")),
    "play": ("play", ("Theaterstück", "das"), ("obra", "f"), ("pièce", "f"), ("戏", "出")),
    "dinner": ("dinner", ("Abendessen", "das"), ("cena", "f"), ("dîner", "m"), ("晚饭", "顿")),
}  # fmt: skip

# Sentiment adjectives: en: (de, (es m, es f), (fr m, fr f), zh, polarity)
OPINIONS = {
    "wonderful": ("wunderbar", ("maravilloso", "maravillosa"), ("merveilleux", "merveilleuse"),
                  "精彩", 1),
    "great": ("großartig", ("genial", "genial"), ("génial", "géniale"), "棒", 1),
    "beautiful": ("schön", ("hermoso", "hermosa"), ("beau", "belle"), "美", 1),
    "funny": ("lustig", ("divertido", "divertida"), ("drôle", "drôle"), "有趣", 1),
    "charming": ("charmant", ("encantador", "encantadora"), ("charmant", "charmante"), "迷人", 1),
    "excellent": ("ausgezeichnet", ("excelente", "excelente"), ("excellent", "excellente"),
                  "出色", 1),
    "moving": ("bewegend", ("conmovedor", "conmovedora"), ("émouvant", "émouvante"), "感人", 1),
    "exciting": ("spannend", ("emocionante", "emocionante"), ("passionnant", "passionnante"),
                 "刺激", 1),
    "boring": ("langweilig", ("aburrido", "aburrida"), ("ennuyeux", "ennuyeuse"), "无聊", 0),
    "terrible": ("schrecklich", ("terrible", "terrible"), ("terrible", "terrible"), "糟糕", 0),
    "awful": ("furchtbar", ("horrible", "horrible"), ("affreux", "affreuse"), "可怕", 0),
    "dull": ("öde", ("soso", "sosa"), ("fade", "fade"), "乏味", 0),
    "ugly": ("hässlich", ("feo", "fea"), ("laid", "laide"), "难看", 0),
    "weak": ("schwach", ("flojo", "floja"), ("faible", "faible"), "差劲", 0),
    "painful": ("quälend", ("penoso", "penosa"), ("pénible", "pénible"), "痛苦", 0),
    "silly": ("albern", ("tonto", "tonta"), ("stupide", "stupide"), "愚蠢", 0),
}  # fmt: skip

LI = {lang: i for i, lang in enumerate(LANGS)}


# ---------------------------------------------------------------------------------------------
# Meanings
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Act:
    """<subj> <verb>s <quant> <count> <color> <noun> [for <benef>] [<place>] [<time>|every day].

    subj is a name, "someone" or "nobody"; noun is a NOUNS key, or a CATEGORIES key when
    `category` is set; quant is None, "more", "least", "exactly" or "fewer" (with count)."""

    subj: str
    verb: str
    noun: str
    count: int | None = None
    color: str | None = None
    place: str | None = None
    time: str | None = None
    neg: bool = False
    category: bool = False
    quant: str | None = None
    benef: str | None = None
    habit: bool = False


@dataclass(frozen=True)
class Loc:
    subj: str
    place: str
    neg: bool = False
    also: bool = False


@dataclass(frozen=True)
class Like:
    subj: str
    what: str  # a CATEGORIES key


@dataclass(frozen=True)
class Opinion:
    thing: str
    adj: str
    adj2: str | None = None  # joined with "and" (same polarity) or "but" (opposite)
    neg: bool = False
    holder: str | None = None


@dataclass(frozen=True)
class Pawsy:
    """<agents> <verb> <patient> <place> <time>, in one of four surface forms."""

    agents: tuple[str, ...]
    verb: str
    patient: str
    place: str
    time: str
    form: str  # active | front | passive | front_passive


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def zh_name(n: str) -> str:
    return NAMES[n][0]


def gender(n: str) -> str:
    return NAMES[n][1]


def polarity(adj: str) -> int:
    return OPINIONS[adj][4]


# ---------------------------------------------------------------------------------------------
# Renderers, one per language
# ---------------------------------------------------------------------------------------------
QUANT = {  # quant: en, de, es, fr, zh (format with the number)
    "more": ("more than {}", "mehr als {}", "más de {}", "plus de {}", "超过{}"),
    "least": ("at least {}", "mindestens {}", "al menos {}", "au moins {}", "至少{}"),
    "exactly": ("exactly {}", "genau {}", "exactamente {}", "exactement {}", "正好{}"),
    "fewer": ("fewer than {}", "weniger als {}", "menos de {}", "moins de {}", "不到{}"),
}
SOMEONE = ("someone", "jemand", "alguien", "quelqu'un", "有人")
NOBODY = ("nobody", "niemand", "nadie", "personne", "没有人")


def subj_word(subj: str, lang: str) -> str:
    if subj == "someone":
        return SOMEONE[LI[lang]]
    if subj == "nobody":
        return NOBODY[LI[lang]]
    return zh_name(subj) if lang == "zh" else subj


def noun_forms(a: Act, lang: str) -> tuple[str, str | None, str | None]:
    """(noun word, gender for es/fr or None, zh measure word or None)"""
    if a.category:
        en, de, es, fr, zh = CATEGORIES[a.noun]
        return {
            "en": (en, None, None),
            "de": (de, None, None),
            "es": (es[0], es[1], None),
            "fr": (fr[0], fr[1], None),
            "zh": (zh, None, None),
        }[lang]
    _, en, de, es, fr, zh = NOUNS[a.noun]
    return {
        "en": (en, None, None),
        "de": (de, None, None),
        "es": (es[0], es[1], None),
        "fr": (fr[0], fr[1], None),
        "zh": (zh[0], None, zh[1]),
    }[lang]


def np_en(a: Act) -> str:
    noun, _, _ = noun_forms(a, "en")
    parts = []
    if a.count is not None:
        num = NUMBERS[a.count][0]
        parts.append(QUANT[a.quant][0].format(num) if a.quant else num)
    if a.color:
        parts.append(a.color)
    parts.append(noun)
    return " ".join(parts)


def render_en(m) -> str:
    if isinstance(m, Act):
        s = subj_word(m.subj, "en")
        v3, vb = VERBS[m.verb][0], VERBS[m.verb][1]
        if m.neg:
            out = f"{s} does not {vb} any {np_en(m)}"
        else:
            out = f"{s} {v3} {np_en(m)}"
        if m.benef:
            out += f" for {m.benef}"
        if m.place:
            out += " " + PLACES[m.place][0]
        if m.habit:
            out += " " + HABIT[0]
        elif m.time:
            out += " " + TIMES[m.time][0]
        return cap(out) + "."
    if isinstance(m, Loc):
        mid = "is also" if m.also else ("is not" if m.neg else "is")
        return f"{m.subj} {mid} {PLACES[m.place][0]}."
    if isinstance(m, Like):
        return f"{m.subj} likes {CATEGORIES[m.what][0]}."
    if isinstance(m, Opinion):
        body = f"the {THINGS[m.thing][0]} was {'not ' if m.neg else ''}{m.adj}"
        if m.adj2:
            same = polarity(m.adj) == polarity(m.adj2)
            body += f" and {m.adj2}" if same else f", but {m.adj2}"
        return cap(f"{m.holder} thinks {body}" if m.holder else body) + "."
    if isinstance(m, Pawsy):
        (v3, vpl, pp), *_ = PERSON_VERBS[m.verb]
        agents = " and ".join(m.agents)
        verb = v3 if len(m.agents) == 1 else vpl
        place, time = PLACES[m.place][0], TIMES[m.time][0]
        if m.form == "active":
            return f"{agents} {verb} {m.patient} {place} {time}."
        if m.form == "front":
            return f"{cap(time)}, {agents} {verb} {m.patient} {place}."
        if m.form == "passive":
            return f"{m.patient} is {pp} by {agents} {place} {time}."
        return f"{cap(time)}, {m.patient} is {pp} by {agents} {place}."
    raise TypeError(m)


def np_de(a: Act, after_kein: bool = False) -> str:
    noun, _, _ = noun_forms(a, "de")
    parts = []
    if a.count is not None:
        num = NUMBERS[a.count][1]
        parts.append(QUANT[a.quant][1].format(num) if a.quant else num)
    if a.color:
        parts.append(COLORS[a.color][0] + ("en" if after_kein else "e"))
    parts.append(noun)
    return " ".join(parts)


def render_de(m) -> str:
    if isinstance(m, Act):
        s = subj_word(m.subj, "de")
        out = f"{s} {VERBS[m.verb][2]}"
        if m.habit:
            out += " " + HABIT[1]
        elif m.time:
            out += " " + TIMES[m.time][1]
        out += " keine " + np_de(m, after_kein=True) if m.neg else " " + np_de(m)
        if m.benef:
            out += f" für {m.benef}"
        if m.place:
            out += " " + PLACES[m.place][1]
        return cap(out) + "."
    if isinstance(m, Loc):
        mid = "ist auch" if m.also else ("ist nicht" if m.neg else "ist")
        return f"{m.subj} {mid} {PLACES[m.place][1]}."
    if isinstance(m, Like):
        return f"{m.subj} mag {CATEGORIES[m.what][1]}."
    if isinstance(m, Opinion):
        word, art = THINGS[m.thing][1]
        adj = OPINIONS[m.adj][0]
        pred = f"{'nicht ' if m.neg else ''}{adj}"
        if m.adj2:
            same = polarity(m.adj) == polarity(m.adj2)
            pred += (" und " if same else ", aber ") + OPINIONS[m.adj2][0]
        if m.holder:
            return f"{m.holder} findet, dass {art} {word} {pred} war."
        return f"{cap(art)} {word} war {pred}."
    if isinstance(m, Pawsy):
        _, (v3, vpl, pp), *_ = PERSON_VERBS[m.verb]
        agents = " und ".join(m.agents)
        verb = v3 if len(m.agents) == 1 else vpl
        place, time = PLACES[m.place][1], TIMES[m.time][1]
        if m.form == "active":
            return f"{agents} {verb} {m.patient} {time} {place}."
        if m.form == "front":
            return f"{cap(time)} {verb} {agents} {m.patient} {place}."
        if m.form == "passive":
            return f"{m.patient} wird {time} von {agents} {place} {pp}."
        return f"{cap(time)} wird {m.patient} von {agents} {place} {pp}."
    raise TypeError(m)


def np_es(a: Act) -> str:
    noun, g, _ = noun_forms(a, "es")
    parts = []
    if a.count is not None:
        num = NUMBERS[a.count][2]
        parts.append(QUANT[a.quant][2].format(num) if a.quant else num)
    parts.append(noun)
    if a.color:
        parts.append(COLORS[a.color][1][0 if g == "m" else 1])
    return " ".join(parts)


def es_and(names) -> str:
    return " y ".join(names)


def render_es(m) -> str:
    if isinstance(m, Act):
        s = subj_word(m.subj, "es")
        out = f"{s} {'no ' if m.neg else ''}{VERBS[m.verb][3]} {np_es(m)}"
        if m.benef:
            out += f" para {m.benef}"
        if m.place:
            out += " " + PLACES[m.place][2]
        if m.habit:
            out += " " + HABIT[2]
        elif m.time:
            out += " " + TIMES[m.time][2]
        return cap(out) + "."
    if isinstance(m, Loc):
        mid = "también está" if m.also else ("no está" if m.neg else "está")
        return f"{m.subj} {mid} {PLACES[m.place][2]}."
    if isinstance(m, Like):
        word, g = CATEGORIES[m.what][2]
        return f"A {m.subj} le gustan {'los' if g == 'm' else 'las'} {word}."
    if isinstance(m, Opinion):
        word, g = THINGS[m.thing][2]
        i = 0 if g == "m" else 1
        pred = f"{'no ' if m.neg else ''}fue {OPINIONS[m.adj][1][i]}"
        if m.adj2:
            same = polarity(m.adj) == polarity(m.adj2)
            pred += (" y " if same else ", pero ") + OPINIONS[m.adj2][1][i]
        body = f"{'el' if g == 'm' else 'la'} {word} {pred}"
        return cap(f"{m.holder} piensa que {body}" if m.holder else body) + "."
    if isinstance(m, Pawsy):
        _, _, (v3, vpl, pp), *_ = PERSON_VERBS[m.verb]
        if gender(m.patient) == "f":
            pp = pp[:-1] + "a"
        agents = es_and(m.agents)
        verb = v3 if len(m.agents) == 1 else vpl
        place, time = PLACES[m.place][2], TIMES[m.time][2]
        if m.form == "active":
            return f"{agents} {verb} a {m.patient} {place} {time}."
        if m.form == "front":
            return f"{cap(time)}, {agents} {verb} a {m.patient} {place}."
        if m.form == "passive":
            return f"{m.patient} es {pp} por {agents} {place} {time}."
        return f"{cap(time)}, {m.patient} es {pp} por {agents} {place}."
    raise TypeError(m)


def fr_elide(word: str, following: str) -> str:
    """ne/de/que before a vowel -> n'/d'/qu'"""
    if following[:1].lower() in "aeiouéèêâîôh":
        return word[:-1] + "'" + following
    return f"{word} {following}"


def np_fr(a: Act, partitive: bool = True) -> str:
    noun, g, _ = noun_forms(a, "fr")
    parts = []
    if a.count is not None:
        num = NUMBERS[a.count][3]
        parts.append(QUANT[a.quant][3].format(num) if a.quant else num)
    elif partitive:
        parts.append("des")
    parts.append(noun)
    if a.color:
        parts.append(COLORS[a.color][2][0 if g == "m" else 1])
    return " ".join(parts)


def render_fr(m) -> str:
    if isinstance(m, Act):
        s = subj_word(m.subj, "fr")
        verb = VERBS[m.verb][4]
        if m.subj == "nobody":
            out = f"{s} {fr_elide('ne', verb)} {fr_elide('de', np_fr(m, partitive=False))}"
        elif m.neg:
            out = f"{s} {fr_elide('ne', verb)} pas {fr_elide('de', np_fr(m, partitive=False))}"
        else:
            out = f"{s} {verb} {np_fr(m)}"
        if m.benef:
            out += f" pour {m.benef}"
        if m.place:
            out += " " + PLACES[m.place][3]
        if m.habit:
            out += " " + HABIT[3]
        elif m.time:
            out += " " + TIMES[m.time][3]
        return cap(out) + "."
    if isinstance(m, Loc):
        mid = "est aussi" if m.also else ("n'est pas" if m.neg else "est")
        return f"{m.subj} {mid} {PLACES[m.place][3]}."
    if isinstance(m, Like):
        return f"{m.subj} aime les {CATEGORIES[m.what][3][0]}."
    if isinstance(m, Opinion):
        word, g = THINGS[m.thing][3]
        i = 0 if g == "m" else 1
        verb = "n'était pas" if m.neg else "était"
        pred = f"{verb} {OPINIONS[m.adj][2][i]}"
        if m.adj2:
            same = polarity(m.adj) == polarity(m.adj2)
            pred += (" et " if same else ", mais ") + OPINIONS[m.adj2][2][i]
        body = f"{'le' if g == 'm' else 'la'} {word} {pred}"
        if m.holder:
            return f"{m.holder} pense que {body}."
        return cap(body) + "."
    if isinstance(m, Pawsy):
        *_, (v3, vpl, pp), _ = PERSON_VERBS[m.verb]
        if gender(m.patient) == "f":
            pp += "e"
        agents = " et ".join(m.agents)
        verb = v3 if len(m.agents) == 1 else vpl
        place, time = PLACES[m.place][3], TIMES[m.time][3]
        if m.form == "active":
            return f"{agents} {verb} {m.patient} {place} {time}."
        if m.form == "front":
            return f"{cap(time)}, {agents} {verb} {m.patient} {place}."
        if m.form == "passive":
            return f"{m.patient} est {pp} par {agents} {place} {time}."
        return f"{cap(time)}, {m.patient} est {pp} par {agents} {place}."
    raise TypeError(m)


def np_zh(a: Act) -> str:
    noun, _, mw = noun_forms(a, "zh")
    out = ""
    if a.count is not None:
        num = NUMBERS[a.count][4] + (mw or "个")
        out += QUANT[a.quant][4].format(num) if a.quant else num
    if a.color:
        out += COLORS[a.color][3] + "的"
    return out + noun


def render_zh(m) -> str:
    if isinstance(m, Act):
        out = subj_word(m.subj, "zh")
        if m.habit:
            out += HABIT[4]
        elif m.time:
            out += TIMES[m.time][4]
        if m.neg:
            out += "没有"
        if m.place:
            out += "在" + PLACES[m.place][4]
        if m.benef:
            out += "为" + zh_name(m.benef)
        out += VERBS[m.verb][5]
        if not (m.neg or m.habit or m.subj == "nobody"):
            out += "了"
        return out + np_zh(m) + "。"
    if isinstance(m, Loc):
        mid = "也在" if m.also else ("不在" if m.neg else "在")
        return f"{zh_name(m.subj)}{mid}{PLACES[m.place][4]}。"
    if isinstance(m, Like):
        return f"{zh_name(m.subj)}喜欢{CATEGORIES[m.what][4]}。"
    if isinstance(m, Opinion):
        word, mw = THINGS[m.thing][4]
        pred = ("不" if m.neg else "很") + OPINIONS[m.adj][3]
        if m.adj2:
            same = polarity(m.adj) == polarity(m.adj2)
            pred += ("，也很" if same else "，但是很") + OPINIONS[m.adj2][3]
        body = f"这{mw}{word}{pred}"
        return (f"{zh_name(m.holder)}觉得{body}" if m.holder else body) + "。"
    if isinstance(m, Pawsy):
        verb = PERSON_VERBS[m.verb][4]
        agents = "和".join(zh_name(a) for a in m.agents)
        patient = zh_name(m.patient)
        place, time = "在" + PLACES[m.place][4], TIMES[m.time][4]
        if m.form == "active":
            return f"{agents}{time}{place}{verb}了{patient}。"
        if m.form == "front":
            return f"{time}，{agents}{place}{verb}了{patient}。"
        if m.form == "passive":
            return f"{patient}{time}{place}被{agents}{verb}了。"
        return f"{time}，{patient}{place}被{agents}{verb}了。"
    raise TypeError(m)


RENDER = {"en": render_en, "de": render_de, "es": render_es, "fr": render_fr, "zh": render_zh}


def render(m, lang: str) -> str:
    return RENDER[lang](m)


# ---------------------------------------------------------------------------------------------
# Samplers
# ---------------------------------------------------------------------------------------------
class Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def pick(self, seq):
        return self.rng.choice(list(seq))

    def names(self, k: int) -> list[str]:
        return self.rng.sample(list(NAMES), k)

    def scene(self) -> Act:
        """A premise: a named person does something to 2-6 coloured things somewhere."""
        r = self.rng
        return Act(
            subj=self.pick(NAMES),
            verb=self.pick(VERBS),
            noun=self.pick(NOUNS),
            count=r.randint(2, 6),
            color=self.pick(COLORS) if r.random() < 0.8 else None,
            place=self.pick(PLACES),
            time=self.pick(TIMES) if r.random() < 0.7 else None,
        )

    # --- NLI (XNLI, MNLI): one premise sentence, one hypothesis sentence ---------------------
    def nli(self, label: str):
        p = self.scene()
        return p, self.hypothesis(p, label), label

    def hypothesis(self, p: Act, label: str):
        """A hypothesis with the given NLI label for the premise scene `p`."""
        other = self.pick(n for n in NAMES if n != p.subj)
        cat = NOUNS[p.noun][0]
        bare = Act(p.subj, p.verb, p.noun)
        if label == "entailment":
            options = [
                bare,
                Act(p.subj, p.verb, cat, category=True),
                Loc(p.subj, p.place),
                Act("someone", p.verb, p.noun, color=p.color),
                replace(p, time=None),
                Act(p.subj, p.verb, p.noun, count=p.count, color=p.color),
            ]
        elif label == "neutral":
            options = [
                replace(bare, benef=other),
                Loc(other, p.place, also=True),
                Like(p.subj, cat),
                replace(bare, habit=True),
                Act(other, p.verb, p.noun, color=p.color),
                replace(p, time=None, benef=other),
            ]
        else:
            other_place = self.pick(x for x in PLACES if x != p.place)
            other_count = self.pick(n for n in range(2, 7) if n != p.count)
            options = [
                replace(bare, neg=True),
                Act("nobody", p.verb, p.noun),
                Loc(p.subj, other_place),
                Loc(p.subj, p.place, neg=True),
                replace(p, count=other_count, time=None),
                Act(p.subj, p.verb, cat, category=True, neg=True),
            ]
        return self.pick(options)

    # --- ANLI: several facts; the hypothesis needs quantifiers, negation or comparison ------
    def anli(self, label: str, max_tries: int = 200):
        for _ in range(max_tries):
            got = self._anli_candidate()
            if got is not None and got[2] == label:
                return got
        raise RuntimeError("could not sample an ANLI example")

    def _anli_candidate(self):
        r = self.rng
        people = self.names(3)
        verb = self.pick(VERBS)
        facts = []
        shared_noun = self.pick(NOUNS)
        for i, name in enumerate(people[:2]):
            noun = shared_noun if r.random() < 0.6 else self.pick(NOUNS)
            place = self.pick(PLACES)
            facts.append(
                Act(
                    name,
                    verb if i == 0 or r.random() < 0.7 else self.pick(VERBS),
                    noun,
                    count=r.randint(2, 6),
                    color=self.pick(COLORS) if r.random() < 0.5 else None,
                    place=place,
                )
            )
        neg_fact = Act(people[2], self.pick(VERBS), self.pick(NOUNS), neg=True)
        context_facts = facts + [neg_fact]
        r.shuffle(context_facts)
        context = " ".join(render_en(f) for f in context_facts)
        f = self.pick(facts)
        kind = self.pick(
            ["quant", "quant", "neg_fact", "category", "nobody", "compare", "where", "other"]
        )
        a, b = facts
        if kind == "quant":
            q = self.pick(QUANT)
            k = r.randint(2, 7)
            truth = {
                "more": f.count > k,
                "least": f.count >= k,
                "exactly": f.count == k,
                "fewer": f.count < k,
            }[q]
            hyp = render_en(Act(f.subj, f.verb, f.noun, count=k, quant=q, color=f.color))
            label = "e" if truth else "c"
            claim = QUANT[q][0].format(NUMBERS[k][0])
            reason = f"{f.subj} {VERBS[f.verb][0]} {NUMBERS[f.count][0]}: '{claim}' is {truth}"
        elif kind == "neg_fact":
            n = neg_fact
            choice = r.randrange(3)
            if choice == 0:
                hyp, label = render_en(Act(n.subj, n.verb, n.noun, count=r.randint(2, 6))), "c"
            elif choice == 1:
                hyp, label = render_en(Act(n.subj, n.verb, NOUNS[n.noun][0], category=True)), "n"
            else:
                hyp = render_en(Act(n.subj, n.verb, n.noun, neg=True, place=self.pick(PLACES)))
                label = "e"
            reason = f"the context says {n.subj} does not {VERBS[n.verb][1]} any {NOUNS[n.noun][1]}"
        elif kind == "category":
            cat = NOUNS[f.noun][0]
            if r.random() < 0.5:
                hyp, label = render_en(Act(f.subj, f.verb, cat, category=True, neg=True)), "c"
            else:
                sib = self.pick(k for k, v in NOUNS.items() if v[0] == cat and k != f.noun)
                hyp, label = render_en(Act(f.subj, f.verb, sib)), "n"
            reason = f"{NOUNS[f.noun][1]} are {cat}"
        elif kind == "nobody":
            noun = f.noun if r.random() < 0.5 else self.pick(NOUNS)
            done = any(x.verb == f.verb and x.noun == noun for x in facts)
            hyp = render_en(Act("nobody", f.verb, noun))
            label = "c" if done else "n"
            reason = "someone in the context does it" if done else "the context does not say"
        elif kind == "compare":
            if not (a.noun == b.noun and a.verb == b.verb) or a.count == b.count:
                return None
            more = r.random() < 0.5
            word = "more" if more else "fewer"
            hyp = f"{a.subj} {VERBS[a.verb][0]} {word} {NOUNS[a.noun][1]} than {b.subj}."
            truth = a.count > b.count if more else a.count < b.count
            label = "e" if truth else "c"
            reason = f"{NUMBERS[a.count][0]} against {NUMBERS[b.count][0]}"
        elif kind == "where":
            place = a.place if r.random() < 0.5 else b.place
            hyp = f"{a.subj} and {b.subj} are both {PLACES[place][0]}."
            label = "e" if a.place == b.place == place else "c"
            reason = "each person is in one place"
        else:  # a third person doing one of the facts: unknown
            hyp = render_en(Act(people[2], f.verb, f.noun))
            label = "n" if people[2] != neg_fact.subj or neg_fact.noun != f.noun else "c"
            if neg_fact.verb != f.verb:
                label = "n"
            reason = f"the context says nothing of {people[2]} and {NOUNS[f.noun][1]}"
        return context, hyp, label, reason, kind

    # --- PAWS-X: paraphrase (1) vs word-swapped non-paraphrase (0) ---------------------------
    def paws(self, label: int) -> tuple[Pawsy, Pawsy, int]:
        r = self.rng
        people = self.names(3)
        n_agents = 2 if r.random() < 0.3 else 1
        forms = ["active", "front", "passive", "front_passive"]
        s1 = Pawsy(
            tuple(people[:n_agents]),
            self.pick(PERSON_VERBS),
            people[n_agents],
            self.pick(PLACES),
            self.pick(TIMES),
            self.pick(forms),
        )
        if label == 1:
            agents = s1.agents[::-1] if n_agents == 2 and r.random() < 0.5 else s1.agents
            choices = [f for f in forms if f != s1.form or agents != s1.agents]
            s2 = replace(s1, agents=agents, form=self.pick(choices))
        elif r.random() < 0.3:  # an easier non-paraphrase: one detail differs
            if r.random() < 0.5:
                s2 = replace(s1, place=self.pick(p for p in PLACES if p != s1.place))
            else:
                s2 = replace(s1, time=self.pick(t for t in TIMES if t != s1.time))
            s2 = replace(s2, form=self.pick(forms))
        else:  # PAWS proper: the same words, roles swapped
            if n_agents == 1:
                s2 = replace(s1, agents=(s1.patient,), patient=s1.agents[0])
            else:
                i = r.randrange(2)
                agents = list(s1.agents)
                agents[i], patient = s1.patient, s1.agents[i]
                s2 = replace(s1, agents=tuple(agents), patient=patient)
            s2 = replace(s2, form=self.pick(forms))
        return s1, s2, label

    # --- sentiment (SST-2 and pretraining text) ---------------------------------------------
    def opinion(self, label: int | None = None) -> tuple[Opinion, int]:
        r = self.rng
        while True:
            thing = self.pick(THINGS)
            adj = self.pick(OPINIONS)
            shape = r.random()
            adj2, neg = None, False
            if shape < 0.25:
                adj2 = self.pick(a for a in OPINIONS if polarity(a) == polarity(adj) and a != adj)
            elif shape < 0.5:
                adj2 = self.pick(a for a in OPINIONS if polarity(a) != polarity(adj))
            elif shape < 0.7:
                neg = True
            holder = self.pick(NAMES) if r.random() < 0.3 else None
            m = Opinion(thing, adj, adj2, neg, holder)
            y = polarity(adj2) if adj2 else (1 - polarity(adj) if neg else polarity(adj))
            if label is None or y == label:
                return m, y


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------
NLI_LABELS = ("entailment", "neutral", "contradiction")


def balanced(gen: Gen, n: int, labels) -> list:
    out = [labels[i % len(labels)] for i in range(n)]
    gen.rng.shuffle(out)
    return out


def unique(gen_fn, n: int, key, seen: set) -> list:
    """Draw n items with gen_fn(i), skipping those whose key was already seen."""
    out = []
    i = 0
    while len(out) < n:
        item = gen_fn(len(out))
        k = key(item)
        i += 1
        if i > 50 * n + 1000:
            raise RuntimeError("the grammar cannot produce enough distinct examples")
        if k in seen:
            continue
        seen.add(k)
        out.append(item)
    return out


def write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    for line in lines:
        assert "\t" not in line and "\n" not in line, line
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_tsv(path: Path, rows: list[tuple], header: tuple | None = None) -> None:
    lines = ["\t".join(header)] if header else []
    for row in rows:
        cells = [str(c) for c in row]
        assert all("\t" not in c and "\n" not in c for c in cells), row
        lines.append("\t".join(cells))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def tokens(sentence: str) -> list[str]:
    return re.findall(r"[\w'-]+|[^\w\s]", sentence)


def binary_parse(toks: list[str]) -> str:
    if len(toks) == 1:
        return toks[0]
    return f"( {toks[0]} {binary_parse(toks[1:])} )"


def sst_style(sentence: str) -> str:
    """GLUE SST-2 text is lower-cased with punctuation split off."""
    return " ".join(tokens(sentence.lower())) + " "


def make_xnli(out: Path, gen: Gen, seen: set, sizes: dict[str, int]) -> None:
    for split, n in sizes.items():
        labels = balanced(gen, n, NLI_LABELS)
        items = unique(
            lambda i, labels=labels: gen.nli(labels[i]),
            n,
            lambda t: (render_en(t[0]), render_en(t[1])),
            seen,
        )
        langs = LANGS  # train-en plus translate-train; dev and test in every language
        for lang in langs:
            rows = [(render(p, lang), render(h, lang), y) for p, h, y in items]
            write_tsv(out / "xtreme" / "xnli" / f"{split}-{lang}.tsv", rows)


def make_pawsx(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    for split, n in sizes.items():
        labels = balanced(gen, n, (0, 1))
        items = unique(
            lambda i, labels=labels: gen.paws(labels[i]),
            n,
            lambda t: (render_en(t[0]), render_en(t[1])),
            seen,
        )
        for lang in PAWS_LANGS:
            rows = [(render(a, lang), render(b, lang), y) for a, b, y in items]
            write_tsv(out / "xtreme" / "pawsx" / f"{split}-{lang}.tsv", rows)


MNLI_HEADER = (
    "index",
    "promptID",
    "pairID",
    "genre",
    "sentence1_binary_parse",
    "sentence2_binary_parse",
    "sentence1_parse",
    "sentence2_parse",
    "sentence1",
    "sentence2",
)
MNLI_GENRES = ("fiction", "government", "slate", "telephone", "travel")


def make_mnli(out: Path, gen: Gen, seen: set, sizes: dict[str, int]) -> None:
    for split, n in sizes.items():
        labels = balanced(gen, n, NLI_LABELS)
        items = unique(
            lambda i, labels=labels: gen.nli(labels[i]),
            n,
            lambda t: (render_en(t[0]), render_en(t[1])),
            seen,
        )
        dev = split == "dev_matched"
        extra = ("label1", "label2", "label3", "label4", "label5") if dev else ("label1",)
        rows = []
        for i, (p, h, y) in enumerate(items):
            s1, s2 = render_en(p), render_en(h)
            t1, t2 = tokens(s1), tokens(s2)
            parse1 = "(ROOT (S " + " ".join(f"(X {t})" for t in t1) + "))"
            parse2 = "(ROOT (S " + " ".join(f"(X {t})" for t in t2) + "))"
            prompt = f"{100000 + i // 3}"
            votes = (y,) * len(extra)
            rows.append(
                (
                    i,
                    prompt,
                    f"{prompt}{'ecn'[i % 3]}",
                    gen.pick(MNLI_GENRES),
                    binary_parse(t1),
                    binary_parse(t2),
                    parse1,
                    parse2,
                    s1,
                    s2,
                    *votes,
                    y,
                )
            )
        write_tsv(
            out / "intermediate" / "mnli" / f"{split}.tsv",
            rows,
            header=MNLI_HEADER + extra + ("gold_label",),
        )


def make_anli(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    for split, n in sizes.items():
        labels = balanced(gen, n, ("e", "n", "c"))
        items = unique(
            lambda i, labels=labels: gen.anli(labels[i]), n, lambda t: (t[0], t[1]), seen
        )
        lines = []
        for i, (context, hyp, label, reason, kind) in enumerate(items):
            rec = {
                "uid": f"fixture-r1-{split}-{i:05d}",
                "context": context,
                "hypothesis": hyp,
                "label": label,
                "model_label": gen.pick("enc"),
                "emturk": False,
                "genre": "synthetic",
                "reason": reason,
                "tag": [kind],
            }
            lines.append(json.dumps(rec, ensure_ascii=False))
        write_lines(out / "intermediate" / "anli" / "R1" / f"{split}.jsonl", lines)


def make_sst2(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    for split, n in sizes.items():
        labels = balanced(gen, n, (0, 1))
        items = unique(
            lambda i, labels=labels: gen.opinion(labels[i]), n, lambda t: render_en(t[0]), seen
        )
        rows = [(sst_style(render_en(m)), y) for m, y in items]
        write_tsv(
            out / "intermediate" / "sst2" / f"{split}.tsv", rows, header=("sentence", "label")
        )


def make_pretrain(out: Path, gen: Gen, n: int) -> None:
    r = gen.rng
    meanings = []
    seen: set = set()
    while len(meanings) < n:
        x = r.random()
        if x < 0.30:
            m = gen.scene()
            tweak = r.random()
            if tweak < 0.15:
                m = replace(m, count=None, color=None, neg=True)
            elif tweak < 0.3:
                m = replace(m, quant=gen.pick(QUANT), time=None)
            elif tweak < 0.4:
                m = replace(m, benef=gen.pick(NAMES))
            elif tweak < 0.5:
                m = replace(m, habit=True, count=None)
        elif x < 0.45:
            p, h, _ = gen.nli(gen.pick(NLI_LABELS))
            m = h
        elif x < 0.52:
            m = Loc(gen.pick(NAMES), gen.pick(PLACES), neg=r.random() < 0.3)
        elif x < 0.56:
            m = Like(gen.pick(NAMES), gen.pick(CATEGORIES))
        elif x < 0.80:
            m, _, _ = gen.paws(1)
        else:
            m, _ = gen.opinion()
        key = render_en(m)
        if key in seen:
            continue
        seen.add(key)
        meanings.append(m)
    for lang in LANGS:
        write_lines(out / "pretrain" / f"{lang}.txt", [render(m, lang) for m in meanings])


def text_key(s: str) -> str:
    """Sentences compared without spaces or case (tagging files hold the same words split)."""
    return "".join(s.split()).lower()


def json_strings(obj) -> list[str]:
    """Every string of a JSON value, nested ones included (Mewsli-X rows nest their text)."""
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, list):
        return [s for x in obj for s in json_strings(x)]
    return []


def evaluation_sentences(out: Path) -> set[str]:
    """Every sentence of a dev or test file of any task, in any language (`text_key`s)."""
    keys: set[str] = set()
    for f in out.rglob("*"):
        if not f.is_file() or "pretrain" in f.parts:
            continue
        name = f.name
        evaluation = any(t in name for t in ("dev", "test", "val", "xquad", "tatoeba"))
        if not evaluation or "train" in name:
            continue
        text = f.read_text(encoding="utf-8")
        if f.suffix == ".json":
            for article in json.loads(text)["data"]:
                for para in article["paragraphs"]:
                    keys.update(text_key(x) for x in re.split(r"(?<=[.。])\s*", para["context"]))
                    keys.update(text_key(q["question"]) for q in para["qas"])
        elif f.suffix == ".jsonl":
            for line in text.split("\n"):
                if line.strip():
                    keys.update(text_key(v) for v in json_strings(json.loads(line)))
        elif "udpos" in f.parts or "panx" in f.parts or "ccg" in f.parts:
            for sent in text.split("\n\n"):
                keys.add(text_key("".join(t.split("\t")[0] for t in sent.split("\n") if t)))
        else:
            for line in text.split("\n"):
                for cell in line.split("\t"):
                    keys.add(text_key(cell))
    keys.discard("")
    return keys


def exclude_evaluation_text(out: Path) -> int:
    """Drop every pretraining row (in all languages, so the files stay parallel) whose text in
    any language is an evaluation sentence: no test sentence, or its translation, is ever seen
    in pretraining. Returns the rows kept per language."""
    held_out = evaluation_sentences(out)
    files = {lang: out / "pretrain" / f"{lang}.txt" for lang in LANGS}
    rows = {lang: f.read_text(encoding="utf-8").split("\n")[:-1] for lang, f in files.items()}
    n = len(rows["en"])
    keep = [i for i in range(n) if not any(text_key(rows[lg][i]) in held_out for lg in LANGS)]
    for lang, f in files.items():
        write_lines(f, [rows[lang][i] for i in keep])
    return len(keep)


# ---------------------------------------------------------------------------------------------
# Span QA (SQuAD v1.1 json): paragraphs of three facts, questions who / where / how many
# ---------------------------------------------------------------------------------------------
QA_KINDS = ("who", "where", "count")
QA_LANGS = ("en", "de", "es", "zh")  # the fixture languages that XQuAD has (no fr)
TRANSLATE_TRAIN_SQUAD = "{out}/xtreme/squad/translate-train/squad.translate.train.en-{lang}.json"


def qa_question(f: Act, kind: str, lang: str) -> str:
    s = subj_word(f.subj, lang)
    if lang == "en":
        v3, vb = VERBS[f.verb][0], VERBS[f.verb][1]
        return {
            "who": f"Who {v3} {np_en(f)}?",
            "where": f"Where does {s} {vb} {np_en(f)}?",
            "count": f"How many {np_en(replace(f, count=None))} does {s} {vb}?",
        }[kind]
    if lang == "de":
        v = VERBS[f.verb][2]
        return {
            "who": f"Wer {v} {np_de(f)}?",
            "where": f"Wo {v} {s} {np_de(f)}?",
            "count": f"Wie viele {np_de(replace(f, count=None))} {v} {s}?",
        }[kind]
    if lang == "es":
        v = VERBS[f.verb][3]
        many = "Cuántos" if noun_forms(f, "es")[1] == "m" else "Cuántas"
        return {
            "who": f"¿Quién {v} {np_es(f)}?",
            "where": f"¿Dónde {v} {s} {np_es(f)}?",
            "count": f"¿{many} {np_es(replace(f, count=None))} {v} {s}?",
        }[kind]
    verb, place = VERBS[f.verb][5], PLACES[f.place][4]
    noun, _, mw = noun_forms(f, "zh")
    return {
        "who": f"谁在{place}{verb}了{np_zh(f)}？",
        "where": f"{s}在哪里{verb}了{np_zh(f)}？",
        "count": f"{s}{verb}了几{mw}{np_zh(replace(f, count=None))}？",
    }[kind]


def qa_answer(f: Act, kind: str, lang: str) -> str:
    if kind == "who":
        return subj_word(f.subj, lang)
    if kind == "where":
        return PLACES[f.place][LI[lang]]
    return NUMBERS[f.count][LI[lang]]


def qa_facts(gen: Gen) -> list[Act]:
    """Three scenes with different people, places, counts and (verb, noun)."""
    r = gen.rng
    people = gen.names(3)
    places = r.sample(list(PLACES), 3)
    counts = r.sample(range(2, 7), 3)
    facts, done = [], set()
    for who, where, n in zip(people, places, counts):
        while True:
            verb, noun = gen.pick(VERBS), gen.pick(NOUNS)
            if (verb, noun) not in done:
                break
        done.add((verb, noun))
        color = gen.pick(COLORS) if r.random() < 0.7 else None
        time = gen.pick(TIMES) if r.random() < 0.5 else None
        facts.append(Act(who, verb, noun, count=n, color=color, place=where, time=time))
    return facts


def squad_doc(paragraphs: list[dict]) -> str:
    data = [{"title": f"fixture-{i:04d}", "paragraphs": [p]} for i, p in enumerate(paragraphs)]
    return json.dumps({"version": "1.1", "data": data}, ensure_ascii=False) + "\n"


def qa_paragraph(
    facts: list[Act], asked: list[tuple[int, str]], lang: str, prefix: str, breaks: bool = False
) -> dict:
    """A SQuAD paragraph of the facts' sentences; with `breaks`, XQuAD-R's ``sentences`` and
    ``sentence_breaks`` too."""
    sentences = [render(f, lang) for f in facts]
    sep = "" if lang == "zh" else " "
    starts, at = [], 0
    for sent in sentences:
        starts.append(at)
        at += len(sent) + len(sep)
    context = sep.join(sentences)
    qas = []
    for q, (i, kind) in enumerate(asked):
        answer = qa_answer(facts[i], kind, lang)
        # the count comes after the (zh) time word, which may hold the same digit: 星期三
        inside = sentences[i].rfind(answer) if kind == "count" else sentences[i].find(answer)
        assert inside >= 0, (sentences[i], answer)
        start = starts[i] + inside
        assert context[start : start + len(answer)] == answer
        qas.append(
            {
                "answers": [{"answer_start": start, "text": answer}],
                "question": qa_question(facts[i], kind, lang),
                "id": f"{prefix}-q{q}",
            }
        )
    para = {"context": context, "qas": qas}
    if breaks:
        para["sentences"] = sentences
        para["sentence_breaks"] = [[a, a + len(x)] for a, x in zip(starts, sentences)]
    return para


def make_qa(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    files = {
        "train": out / "intermediate" / "squad" / "train-v1.1.json",
        "dev": out / "intermediate" / "squad" / "dev-v1.1.json",
    }
    for split, n in sizes.items():
        items = []
        while len(items) < n:
            facts = qa_facts(gen)
            key = tuple(render_en(f) for f in facts)
            if key in seen:
                continue
            seen.add(key)
            asked = gen.rng.sample([(i, k) for i in range(3) for k in QA_KINDS], 2)
            items.append((facts, asked))
        # train: SQuAD's English file, and its translations in XTREME's translate-train layout
        for lang in QA_LANGS if split in ("test", "train") else ("en",):
            paragraphs = [
                qa_paragraph(facts, asked, lang, f"{split}-{i:04d}")
                for i, (facts, asked) in enumerate(items)
            ]
            path = files.get(split, out / "xtreme" / "xquad" / f"xquad.{lang}.json")
            if split == "train" and lang != "en":
                path = Path(TRANSLATE_TRAIN_SQUAD.format(out=out, lang=lang))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(squad_doc(paragraphs), encoding="utf-8")
            if split == "test":  # XQuAD-R (LAReQA): XQuAD with its sentence breaks
                paragraphs = [
                    qa_paragraph(facts, asked, lang, f"{split}-{i:04d}", breaks=True)
                    for i, (facts, asked) in enumerate(items)
                ]
                path = out / "xtreme" / "lareqa" / "xquad-r" / f"{lang}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(squad_doc(paragraphs), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# Tagging: UD-POS (UPOS), PAN-X (IOB2 PER/ORG/LOC), CCG supertags (English, synthetic)
# ---------------------------------------------------------------------------------------------
FUNCTION_WORDS = {  # the closed-class words of PLACES and TIMES
    "en": {"in": "ADP", "at": "ADP", "on": "ADP", "the": "DET"},
    "de": {"im": "ADP", "in": "ADP", "am": "ADP", "auf": "ADP", "der": "DET", "dem": "DET"},
    "es": {"en": "ADP", "por": "ADP", "al": "ADP", "el": "DET", "la": "DET"},
    "fr": {"dans": "ADP", "à": "ADP", "au": "ADP", "sur": "ADP", "le": "DET", "la": "DET",
           "l'": "DET"},
}  # fmt: skip
EN_DAYS = {"Monday", "Wednesday", "Friday", "Saturday", "Sunday"}


def word_tokens(sentence: str) -> list[str]:
    """Words and punctuation; French elided articles (l') are words of their own."""
    return re.findall(r"\w+'|[\w-]+|[^\w\s]", sentence)


def upos_lexicon(lang: str) -> dict[str, str]:
    i = LI[lang]
    lex: dict[str, str] = {}

    def add(word: str, tag: str) -> None:
        assert lex.setdefault(word, tag) == tag, (lang, word, tag, lex[word])

    for name in NAMES:
        add(name, "PROPN")
    for forms in VERBS.values():
        add(forms[{"en": 0, "de": 2, "es": 3, "fr": 4}[lang]], "VERB")
    for forms in NUMBERS.values():
        add(forms[i], "NUM")
    for en, (de, es, fr, _) in COLORS.items():
        words = {"en": [en], "de": [de + "e", de + "en"], "es": list(es), "fr": list(fr)}[lang]
        for w in words:
            add(w, "ADJ")
    for _, en, de, es, fr, _ in NOUNS.values():
        add({"en": en, "de": de, "es": es[0], "fr": fr[0]}[lang], "NOUN")
    for phrase in [p[i] for p in PLACES.values()] + [t[i] for t in TIMES.values()]:
        for w in word_tokens(phrase):
            tag = FUNCTION_WORDS[lang].get(w, "PROPN" if w in EN_DAYS else "NOUN")
            add(w, tag)
    add(".", "PUNCT")
    return lex


UPOS_LEXICON = {lang: upos_lexicon(lang) for lang in LANGS if lang != "zh"}


def upos_tagged(a: Act, lang: str) -> list[tuple[str, str]]:
    if lang != "zh":
        return [(w, UPOS_LEXICON[lang][w]) for w in word_tokens(render(a, lang))]
    out = [(zh_name(a.subj), "PROPN")]
    if a.time:
        out.append((TIMES[a.time][4], "NOUN"))
    place = PLACES[a.place][4]
    out.append(("在", "ADP"))
    if place[-1] in "里上":  # noun + localizer
        out += [(place[:-1], "NOUN"), (place[-1], "ADP")]
    else:
        out.append((place, "NOUN"))
    noun, _, mw = noun_forms(a, "zh")
    out += [(VERBS[a.verb][5], "VERB"), ("了", "AUX"), (NUMBERS[a.count][4], "NUM"), (mw, "NOUN")]
    if a.color:
        out += [(COLORS[a.color][3], "NOUN"), ("的", "PART")]
    out += [(noun, "NOUN"), ("。", "PUNCT")]
    assert "".join(w for w, _ in out) == render_zh(a), (out, render_zh(a))
    return out


# A CCGbank-style supertag per (English) UPOS tag in these sentences' one construction.
CCG_SUPERTAGS = {
    "PROPN": "N", "NOUN": "N", "NUM": "N/N", "ADJ": "N/N", "DET": "NP[nb]/N",
    "VERB": r"(S[dcl]\NP)/NP", "ADP": r"((S\NP)\(S\NP))/NP", "PUNCT": ".",
}  # fmt: skip

SURNAMES = {  # Latin-script languages, zh
    "Weber": "韦伯", "Martin": "马丁", "García": "加西亚", "Rossi": "罗西", "Dubois": "杜布瓦",
    "Müller": "穆勒", "Silva": "席尔瓦", "Novak": "诺瓦克", "Jensen": "延森", "Moreau": "莫罗",
}  # fmt: skip
CITIES = {  # en, de, es, fr, zh (token lists)
    "Berlin": ("Berlin", "Berlin", "Berlín", "Berlin", "柏林"),
    "Paris": ("Paris", "Paris", "París", "Paris", "巴黎"),
    "Madrid": ("Madrid", "Madrid", "Madrid", "Madrid", "马德里"),
    "London": ("London", "London", "Londres", "Londres", "伦敦"),
    "Rome": ("Rome", "Rom", "Roma", "Rome", "罗马"),
    "Vienna": ("Vienna", "Wien", "Viena", "Vienne", "维也纳"),
    "Lisbon": ("Lisbon", "Lissabon", "Lisboa", "Lisbonne", "里斯本"),
    "Tokyo": ("Tokyo", "Tokio", "Tokio", "Tokyo", "东京"),
    "New York": ("New York", "New York", "Nueva York", "New York", "纽约"),
    "Buenos Aires": ("Buenos Aires", "Buenos Aires", "Buenos Aires", "Buenos Aires",
                     "布宜诺斯艾利斯"),
}  # fmt: skip
ORGS = {  # en, de, es, fr, zh
    "Siemens": ("Siemens", "Siemens", "Siemens", "Siemens", "西门子"),
    "Red Cross": ("Red Cross", "Rotes Kreuz", "Cruz Roja", "Croix-Rouge", "红十字会"),
    "United Nations": ("United Nations", "Vereinte Nationen", "Naciones Unidas",
                       "Nations unies", "联合国"),
    "Deutsche Bank": ("Deutsche Bank", "Deutsche Bank", "Deutsche Bank", "Deutsche Bank",
                      "德意志银行"),
    "Real Madrid": ("Real Madrid", "Real Madrid", "Real Madrid", "Real Madrid", "皇家马德里"),
    "UNESCO": ("UNESCO", "UNESCO", "UNESCO", "UNESCO", "联合国教科文组织"),
    "Airbus": ("Airbus", "Airbus", "Airbus", "Airbus", "空客"),
    "World Bank": ("World Bank", "Weltbank", "Banco Mundial", "Banque mondiale", "世界银行"),
}  # fmt: skip
PANX_TEMPLATES = {  # en, de, es, fr, zh; words split on spaces
    "works": ("{P} works for {O} in {C} .", "{P} arbeitet für {O} in {C} .",
              "{P} trabaja para {O} en {C} .", "{P} travaille pour {O} à {C} .",
              "{P} 在 {C} 为 {O} 工作 。"),
    "flies": ("{P} flies from {C} to {D} .", "{P} fliegt von {C} nach {D} .",
              "{P} vuela de {C} a {D} .", "{P} vole de {C} à {D} .", "{P} 从 {C} 飞往 {D} 。"),
    "opens": ("{O} opens an office in {C} .", "{O} eröffnet ein Büro in {C} .",
              "{O} abre una oficina en {C} .", "{O} ouvre un bureau à {C} .",
              "{O} 在 {C} 开设 了 办事处 。"),
    "meets": ("{P} meets {Q} in {C} .", "{P} trifft {Q} in {C} .",
              "{P} se reúne con {Q} en {C} .", "{P} rencontre {Q} à {C} .",
              "{P} 在 {C} 见 了 {Q} 。"),
}  # fmt: skip


def panx_meaning(gen: Gen) -> dict:
    r = gen.rng
    people = gen.names(2)
    persons = [(p, gen.pick(SURNAMES) if r.random() < 0.5 else None) for p in people]
    cities = r.sample(list(CITIES), 2)
    return {"t": gen.pick(PANX_TEMPLATES), "P": persons[0], "Q": persons[1], "C": cities[0],
            "D": cities[1], "O": gen.pick(ORGS)}  # fmt: skip


def panx_tagged(m: dict, lang: str) -> list[tuple[str, str]]:
    i = LI[lang]
    out = []
    for word in PANX_TEMPLATES[m["t"]][i].split(" "):
        slot = word[1:-1] if word.startswith("{") else None
        if slot in ("P", "Q"):
            first, last = m[slot]
            words = [zh_name(first) if lang == "zh" else first]
            if last:
                words.append(SURNAMES[last] if lang == "zh" else last)
            kind = "PER"
        elif slot in ("C", "D"):
            words, kind = CITIES[m[slot]][i].split(" "), "LOC"
        elif slot == "O":
            words, kind = ORGS[m["O"]][i].split(" "), "ORG"
        else:
            out.append((word, "O"))
            continue
        out += [(w, ("B-" if j == 0 else "I-") + kind) for j, w in enumerate(words)]
    return out


def write_tagged(path: Path, sentences: list[list[tuple[str, str]]]) -> None:
    lines = []
    for sent in sentences:
        lines += [f"{w}\t{t}" for w, t in sent] + [""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def make_tagging(out: Path, gen: Gen, sizes: dict[str, int], ccg_sizes: dict[str, int]) -> None:
    """UD-POS and PAN-X: every split in every language (parallel rows; the other languages'
    train and dev files are the in-language training data of a multilingual study)."""
    seen: set = set()
    for split, n in sizes.items():
        acts = unique(lambda i: gen.scene(), n, render_en, seen)
        for lang in LANGS:
            write_tagged(
                out / "xtreme" / "udpos" / f"{split}-{lang}.tsv",
                [upos_tagged(a, lang) for a in acts],
            )
    for split, n in ccg_sizes.items():
        acts = unique(lambda i: gen.scene(), n, render_en, seen)
        sents = [[(w, CCG_SUPERTAGS[t]) for w, t in upos_tagged(a, "en")] for a in acts]
        write_tagged(out / "intermediate" / "ccg" / f"{split}.tsv", sents)
    seen = set()
    for split, n in sizes.items():
        items = unique(
            lambda i: panx_meaning(gen), n, lambda m: tuple(sorted(map(str, m.items()))), seen
        )
        for lang in LANGS:
            write_tagged(
                out / "xtreme" / "panx" / f"{split}-{lang}.tsv",
                [panx_tagged(m, lang) for m in items],
            )


# ---------------------------------------------------------------------------------------------
# Multiple choice: COPA / XCOPA jsonl, HellaSwag jsonl. The right choice is what the premise
# entails; the others contradict it (or, for one HellaSwag ending, are merely unrelated).
# ---------------------------------------------------------------------------------------------
def distinct_hypotheses(gen: Gen, p: Act, labels: tuple[str, ...]) -> list:
    while True:
        hyps = [gen.hypothesis(p, label) for label in labels]
        texts = {render_en(h) for h in hyps}
        if len(texts) == len(hyps) and render_en(p) not in texts:
            return hyps


def make_copa(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    for split, n in sizes.items():
        items = []
        for p in unique(lambda i: gen.scene(), n, render_en, seen):
            right, wrong = distinct_hypotheses(gen, p, ("entailment", "contradiction"))
            label = gen.rng.randrange(2)
            choices = [wrong, right] if label else [right, wrong]
            items.append((p, gen.pick(("cause", "effect")), choices, label))
        langs = ("zh",) if split == "test" else ("en",)  # XCOPA's only fixture language is zh
        for lang in langs:
            lines = [
                json.dumps(
                    {
                        "premise": render(p, lang),
                        "choice1": render(c[0], lang),
                        "choice2": render(c[1], lang),
                        "question": q,
                        "label": y,
                        "idx": i,
                    },
                    ensure_ascii=False,
                )  # fmt: skip
                for i, (p, q, c, y) in enumerate(items)
            ]
            if split == "test":
                path = out / "xtreme" / "xcopa" / f"test-{lang}.jsonl"
            else:
                path = out / "intermediate" / "copa" / f"{split}.jsonl"
            write_lines(path, lines)


def make_hellaswag(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    seen: set = set()
    for split, n in sizes.items():
        lines = []
        for i, p in enumerate(unique(lambda i: gen.scene(), n, render_en, seen)):
            labels = ("entailment", "contradiction", "contradiction", "neutral")
            hyps = distinct_hypotheses(gen, p, labels)
            order = list(range(4))
            gen.rng.shuffle(order)
            endings = [render_en(hyps[k]) for k in order]
            rec = {"ind": i, "activity_label": "fixture", "ctx": render_en(p),
                   "endings": endings, "split": split, "label": order.index(0)}  # fmt: skip
            lines.append(json.dumps(rec, ensure_ascii=False))
        write_lines(out / "intermediate" / "hellaswag" / f"hellaswag_{split}.jsonl", lines)


# ---------------------------------------------------------------------------------------------
# Retrieval: Tatoeba-like aligned sentence files, BUCC-like comparable corpora with gold pairs
# ---------------------------------------------------------------------------------------------
TATOEBA_FILE_CODES = {"de": "deu", "es": "spa", "fr": "fra", "zh": "cmn"}
BUCC_LANGS = ("de", "fr", "zh")


def any_meaning(gen: Gen):
    x = gen.rng.random()
    if x < 0.5:
        return gen.scene()
    if x < 0.75:
        return gen.paws(1)[0]
    return gen.opinion()[0]


def make_tatoeba(out: Path, gen: Gen, n: int) -> None:
    seen: set = set()
    for lang, code in TATOEBA_FILE_CODES.items():
        meanings = unique(lambda i: any_meaning(gen), n, render_en, seen)
        folder = out / "xtreme" / "tatoeba" / "v1"
        write_lines(folder / f"tatoeba.{code}-eng.{code}", [render(m, lang) for m in meanings])
        write_lines(folder / f"tatoeba.{code}-eng.eng", [render_en(m) for m in meanings])


def make_bucc(out: Path, gen: Gen, sizes: dict[str, tuple[int, int, int]]) -> None:
    """Per language and split (gold pairs, other-language-only, English-only sentences)."""
    seen: set = set()
    folder = out / "xtreme" / "bucc2018"
    for lang in BUCC_LANGS:
        for split, (n_gold, n_src, n_trg) in sizes.items():
            meanings = unique(lambda i: any_meaning(gen), n_gold + n_src + n_trg, render_en, seen)
            src = [(k, render(m, lang)) for k, m in enumerate(meanings[: n_gold + n_src])]
            trg = [
                (k, render_en(m))
                for k, m in enumerate(meanings)
                if k < n_gold or k >= n_gold + n_src
            ]
            gen.rng.shuffle(src)
            gen.rng.shuffle(trg)
            src_id = {k: f"{lang}-{j + 1:09d}" for j, (k, _) in enumerate(src)}
            trg_id = {k: f"en-{j + 1:09d}" for j, (k, _) in enumerate(trg)}
            prefix = folder / f"{lang}-en.{split}"
            write_tsv(Path(f"{prefix}.{lang}"), [(src_id[k], t) for k, t in src])
            write_tsv(Path(f"{prefix}.en"), [(trg_id[k], t) for k, t in trg])
            write_tsv(Path(f"{prefix}.gold"), sorted((src_id[k], trg_id[k]) for k in range(n_gold)))


README = """\
# xscale fixture data (synthetic)

Small, **synthetic**, parallel multilingual data for tests, the offline smoke sweep and demos.
Every file here is generated by `scripts/make_fixtures.py` from a template grammar (per-language
lexicons and sentence templates for en, de, es, fr, zh written for this project); nothing is
copied from a real dataset. Row i of a file in one language is the translation of row i of the
English file. Labels follow from the generated meanings, so the tasks are learnable, and the
pretraining text uses the same lexicon, so tiny models pretrained on it can transfer.

Regenerate (deterministic for a seed):

    python scripts/make_fixtures.py --seed 0

| path | format | rows |
|---|---|---|
| pretrain/{en,de,es,fr,zh}.txt | one sentence per line, parallel | {pretrain} per language |
| intermediate/mnli/train.tsv, dev_matched.tsv | GLUE MNLI tsv (header; gold_label) | {mnli} |
| intermediate/anli/R1/train.jsonl, dev.jsonl | ANLI v1.0 jsonl (label e/n/c) | {anli} |
| intermediate/sst2/train.tsv, dev.tsv | GLUE SST-2 tsv, header `sentence<TAB>label` | {sst2} |
| xtreme/xnli/{train,dev,test}-<lang>.tsv | premise, hypothesis, label; no header | {xnli} |
| xtreme/pawsx/{train,dev,test}-<lang>.tsv | sentence1, sentence2, 0/1; no header | {pawsx} |
| intermediate/squad/{train,dev}-v1.1.json | SQuAD v1.1 json (English) | {squad} |
| xtreme/squad/translate-train/squad.translate.train.en-{de,es,zh}.json | SQuAD json | {squad} |
| xtreme/xquad/xquad.{en,de,es,zh}.json | SQuAD json; same questions and ids | {xquad} |
| xtreme/udpos/{train,dev,test}-<lang>.tsv | `token<TAB>UPOS`; blank line between | {udpos} |
| xtreme/panx/{train,dev,test}-<lang>.tsv | `token<TAB>B-PER/I-ORG/B-LOC/O...` (IOB2) | {panx} |
| intermediate/ccg/{train,dev}.tsv | `token<TAB>supertag` (CCG-style; not CCGbank) | {ccg} |
| intermediate/copa/{train,val}.jsonl | SuperGLUE COPA jsonl (English) | {copa} |
| xtreme/xcopa/test-zh.jsonl | XCOPA jsonl (zh: the only XCOPA language here) | {xcopa} |
| intermediate/hellaswag/hellaswag_{train,val}.jsonl | HellaSwag jsonl | {hellaswag} |
| xtreme/tatoeba/v1/tatoeba.<xxx>-eng.{<xxx>,eng} | aligned lines; deu, spa, fra, cmn | {tatoeba} |
| xtreme/bucc2018/<lang>-en.{dev,test}.{<lang>,en,gold} | BUCC 2018 files; de, fr, zh | {bucc} |
| xtreme/lareqa/xquad-r/{en,de,es,zh}.json | XQuAD-R: XQuAD's fixture + sentence breaks | as XQuAD |
| xtreme/mewslix/*.jsonl | Mewsli-X release schema (below) | {mewslix} |

XNLI has every split in en, de, es, fr, zh (train-<lang> for lang != en is the translate-train
set); PAWS-X in en, de, es, fr; UD-POS and PAN-X in en, de, es, fr, zh (their other-language
train and dev files stand for native in-language data). SQuAD's training set also exists in
de, es, zh as XTREME lays out its translate-train files. The QA and multiple-choice sets have
English train/dev files and test files in every language that the task has (XQuAD: en, de, es,
zh; XCOPA: zh);
Tatoeba and BUCC have test data in their languages among these. QA paragraphs hold three
facts and two questions (who / where / how many) whose answers are spans of the context; the
right choice of a multiple-choice item is what its premise entails, the others contradict it
(COPA's cause/effect word is random); the CCG tags follow one construction. Classification
labels are balanced. The sentences are simple and formulaic: these files test plumbing and let
tiny models learn something in minutes; they say nothing about real benchmark scores.
Mewsli-X: 190 candidate entities (descriptions in en, de, es, fr; several share a name),
English Wikipedia pairs (3 mentions per training entity; 30 dev entities), and WikiNews
mentions of 40 test entities in each of en, de, es.
"""


# ---------------------------------------------------------------------------------------------
# Mewsli-X (its release's jsonl schema): people who habitually do one thing somewhere
# ---------------------------------------------------------------------------------------------
MEWSLIX_LANGS = ("en", "de", "es")  # the fixture languages that Mewsli-X has
DESCRIPTION_LANGS = ("en", "de", "es", "fr")
NEWS = {"en": "News", "de": "Nachrichten", "es": "Noticias", "fr": "Nouvelles"}


def mewslix_entities(gen: Gen, n: int) -> list[dict]:
    """`n` distinct (name, verb, noun, place) people; several share a name."""
    seen, out = set(), []
    while len(out) < n:
        key = (gen.pick(NAMES), gen.pick(VERBS), gen.pick(NOUNS), gen.pick(PLACES))
        if key in seen:
            continue
        seen.add(key)
        out.append({"entity_id": f"Q{1000 + len(out)}", "key": key})
    return out


def mewslix_entity(e: dict, lang: str) -> dict:
    name, verb, noun, place = e["key"]
    description = render(Act(name, verb, noun, place=place, habit=True), lang)
    return {
        "entity_id": e["entity_id"],
        "title": subj_word(name, lang),
        "description": description,
        "description_url": f"https://{lang}.wikipedia.org/wiki/{e['entity_id']}",
        "description_language": lang,
        "sentence_spans": [[0, len(description)]],
    }


def mewslix_mention(gen: Gen, e: dict, lang: str, doc: str, k: int) -> tuple[dict, dict]:
    """(context, mention): one news sentence in `lang` about the entity on some occasion."""
    name, verb, noun, place = e["key"]
    act = Act(name, verb, noun, count=gen.rng.randint(2, 6), place=place, time=gen.pick(TIMES))
    text = f"{NEWS[lang]}: {render(act, lang)}"  # never a pretraining line (those have no prefix)
    surface = subj_word(name, lang)
    start = text.index(surface, len(NEWS[lang]))
    context = {
        "document_id": doc,
        "document_url": f"https://{lang}.wikinews.org/wiki/{doc}",
        "document_title": doc,
        "section_title": "",
        "language": lang,
        "text": text,
        "sentence_spans": [[0, len(text)]],
    }
    mention = {
        "example_id": f"{doc}-{k}",
        "entity_id": e["entity_id"],
        "mention_span": {"text": surface, "start": start, "end": start + len(surface)},
    }
    return context, mention


def make_mewslix(out: Path, gen: Gen, sizes: dict[str, int]) -> None:
    """Entities split by id into train / dev / test (as Mewsli-X splits by QID); the candidate
    set holds all of them, each described in a random language; Wikipedia pairs (English) for
    train and dev, WikiNews mentions of the test entities in every fixture language."""
    ents = mewslix_entities(gen, sum(sizes.values()))
    parts = {}
    at = 0
    for split, n in sizes.items():
        parts[split] = ents[at : at + n]
        at += n
    folder = out / "xtreme" / "mewslix"
    folder.mkdir(parents=True, exist_ok=True)
    cands = [mewslix_entity(e, gen.pick(DESCRIPTION_LANGS)) for e in ents]
    lines = [json.dumps(c, ensure_ascii=False) for c in cands]
    write_lines(folder / "candidate_set_entities.jsonl", lines)
    for split in ("train", "dev"):
        rows = []
        for i, e in enumerate(parts[split]):
            for k in range(3 if split == "train" else 1):
                context, mention = mewslix_mention(gen, e, "en", f"wiki-{split}-{i:04d}", k)
                rows.append(
                    {
                        "contextual_mention": {"context": context, "mention": mention},
                        "entity": mewslix_entity(e, "en"),
                    }
                )
        write_lines(
            folder / f"wikipedia_pairs-{split}.jsonl",
            [json.dumps(r, ensure_ascii=False) for r in rows],
        )
    rows = []
    for lang in MEWSLIX_LANGS:
        for i, e in enumerate(parts["test"]):
            context, mention = mewslix_mention(gen, e, lang, f"news-{lang}-{i:04d}", 0)
            rows.append({"context": context, "mentions": [mention]})
    write_lines(
        folder / "wikinews_mentions-test.jsonl", [json.dumps(r, ensure_ascii=False) for r in rows]
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out: Path = args.out
    sizes = {
        "pretrain": 3000,
        "xnli": {"train": 800, "dev": 150, "test": 250},
        "mnli": {"train": 800, "dev_matched": 200},
        "anli": {"train": 500, "dev": 150},
        "sst2": {"train": 600, "dev": 150},
        "pawsx": {"train": 600, "dev": 150, "test": 250},
        "squad": {"train": 120, "dev": 30, "test": 30},  # paragraphs, 2 questions each
        "tagging": {"train": 250, "dev": 50, "test": 60},
        "ccg": {"train": 150, "dev": 40},
        "copa": {"train": 200, "val": 50, "test": 100},
        "hellaswag": {"train": 160, "val": 40},
        "tatoeba": 80,
        "bucc": {"dev": (15, 25, 40), "test": (25, 40, 60)},
        "mewslix": {"train": 120, "dev": 30, "test": 40},  # entities
    }
    nli_seen: set = set()  # MNLI and XNLI share no pair
    make_pretrain(out, Gen(args.seed), sizes["pretrain"])
    make_xnli(out, Gen(args.seed + 1), nli_seen, sizes["xnli"])
    make_mnli(out, Gen(args.seed + 2), nli_seen, sizes["mnli"])
    make_anli(out, Gen(args.seed + 3), sizes["anli"])
    make_sst2(out, Gen(args.seed + 4), sizes["sst2"])
    make_pawsx(out, Gen(args.seed + 5), sizes["pawsx"])
    # Added later: each generator has its own seed, so the files above never change.
    make_qa(out, Gen(args.seed + 6), sizes["squad"])
    make_tagging(out, Gen(args.seed + 7), sizes["tagging"], sizes["ccg"])
    make_copa(out, Gen(args.seed + 8), sizes["copa"])
    make_hellaswag(out, Gen(args.seed + 9), sizes["hellaswag"])
    make_tatoeba(out, Gen(args.seed + 10), sizes["tatoeba"])
    make_bucc(out, Gen(args.seed + 11), sizes["bucc"])
    make_mewslix(out, Gen(args.seed + 12), sizes["mewslix"])
    kept = exclude_evaluation_text(out)

    def fmt(d):
        return " / ".join(f"{k} {v}" for k, v in d.items())

    qa_train = {k: v for k, v in sizes["squad"].items() if k != "test"}
    bucc = sizes["bucc"].items()
    (out / "README.md").write_text(
        README.replace("{pretrain}", str(kept))
        .replace("{mnli}", fmt(sizes["mnli"]))
        .replace("{anli}", fmt(sizes["anli"]))
        .replace("{sst2}", fmt(sizes["sst2"]))
        .replace("{xnli}", fmt(sizes["xnli"]) + " per language")
        .replace("{pawsx}", fmt(sizes["pawsx"]) + " per language")
        .replace("{squad}", fmt(qa_train) + " paragraphs, 2 questions each")
        .replace("{xquad}", f"{sizes['squad']['test']} paragraphs per language")
        .replace("{udpos}", fmt(sizes["tagging"]) + " sentences")
        .replace("{panx}", fmt(sizes["tagging"]) + " sentences")
        .replace("{ccg}", fmt(sizes["ccg"]) + " sentences")
        .replace("{copa}", fmt({k: v for k, v in sizes["copa"].items() if k != "test"}))
        .replace("{xcopa}", str(sizes["copa"]["test"]))
        .replace("{hellaswag}", fmt(sizes["hellaswag"]))
        .replace("{tatoeba}", f"{sizes['tatoeba']} pairs per language")
        .replace("{bucc}", " / ".join(f"{k} {g} gold pairs" for k, (g, _, _) in bucc))
        .replace("{mewslix}", fmt(sizes["mewslix"]) + " entities"),
        encoding="utf-8",
    )
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote {out} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
