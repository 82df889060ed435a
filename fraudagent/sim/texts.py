"""Customer-written text: gamertags, gift messages, support chats, refund and dispute text.

All of it lands in untrusted fields. The pools are wide so that text alone
never identifies a storyline.
"""

from __future__ import annotations

from random import Random

_TAG_WORDS = (
    "shadow",
    "sniper",
    "pixel",
    "ghost",
    "nova",
    "raven",
    "blaze",
    "frost",
    "viper",
    "ninja",
    "tank",
    "wolf",
    "storm",
    "reaper",
    "lucky",
    "noscope",
    "cosmic",
    "turbo",
    "glitch",
    "ember",
    "falcon",
    "mango",
    "panda",
    "rogue",
    "static",
    "titan",
    "waffle",
    "zephyr",
    "biscuit",
    "comet",
)
_TAG_NOUNS = (
    "fox",
    "slayer",
    "queen",
    "king",
    "gamer",
    "hunter",
    "byte",
    "witch",
    "legend",
    "cat",
    "dragon",
    "knight",
    "pilot",
    "bandit",
    "wizard",
    "goblin",
    "runner",
    "sensei",
    "bean",
    "ace",
)


def gamertag(rng: Random) -> str:
    """A display name in one of the shapes players pick."""
    word = rng.choice(_TAG_WORDS)
    noun = rng.choice(_TAG_NOUNS)
    number = rng.randint(1, 9999)
    shape = rng.randrange(7)
    if shape == 0:
        return f"xX_{word}_{noun}_Xx"
    if shape == 1:
        return f"{word.capitalize()}{noun.capitalize()}{number % 100:02d}"
    if shape == 2:
        return f"{word}_{noun}"
    if shape == 3:
        return f"{word.capitalize()}.{noun.capitalize()}.{number % 1000}"
    if shape == 4:
        return f"lil_{noun}{number % 100}"
    if shape == 5:
        return f"{word.upper()}{number}"
    return f"The{word.capitalize()}{noun.capitalize()}"


_FRIEND_NAMES = ("Sam", "Alex", "Jordan", "Mia", "Leo", "Noah", "Emma", "Lucas", "Chloe", "Max", "Zoe", "Ben")
_RELATIVES = ("bro", "sis", "cousin", "buddy", "son", "daughter", "nephew", "mate")


def gift_message(rng: Random) -> str:
    name = rng.choice(_FRIEND_NAMES)
    relative = rng.choice(_RELATIVES)
    return rng.choice(
        (
            f"Happy birthday {name}!! get something fun",
            f"merry xmas {relative} :)",
            f"for {name}, congrats on finishing exams",
            f"Enjoy the sale {relative}, dont spend it all on skins",
            f"gift for my {relative}",
            "happy holidays from all of us",
            f"{name} - saw this was on sale, have fun",
            "thanks for carrying me in ranked lol",
            f"love you {relative}, happy bday",
        )
    )


def support_chat(rng: Random) -> str:
    """An ordinary support conversation opener."""
    return rng.choice(
        (
            "Hi, my download is stuck at 99% for the last two days, can you help?",
            "How do I cancel my subscription before it renews?",
            "I bought the deluxe edition but the bonus items are not showing up",
            "cant sign in on my new tv app, it keeps saying code expired",
            "Is there a way to move my saves to a new console?",
            "my kid needs a child account, how do I set one up",
            "the game says I dont own it but I bought it last week",
            "hello, wallet balance didn't update after top up",
            "Why was my card declined? It works everywhere else.",
            "Please remove my old card from the account",
            "Where can I see my purchase history?",
            "The voucher code from the box says already used",
        )
    )


def refund_reason(rng: Random) -> str:
    return rng.choice(
        (
            "Bought the wrong edition, meant to get the standard one",
            "game crashes on startup on my pc, tried everything",
            "My son bought this without asking",
            "accidental purchase, pressed the wrong button",
            "It doesn't run on my hardware, refund please",
            "Pre-ordered but the release got delayed by a year",
            "bought it twice by mistake",
        )
    )


def abusive_refund_reason(rng: Random) -> str:
    """What serial refunders write: short, generic, repeated."""
    return rng.choice(
        (
            "didnt like it",
            "game doesnt work",
            "not as described",
            "refund pls",
            "accidental purchase",
            "it crashes",
            "my brother bought it",
            "changed my mind",
        )
    )


def duplicate_charge_dispute(rng: Random) -> str:
    return rng.choice(
        (
            "I was charged twice for the same order",
            "Duplicate transaction, only bought one copy",
            "charged two times within a minute, please reverse one",
        )
    )


def friendly_fraud_dispute(rng: Random) -> str:
    """Dispute text claiming the purchase was not the cardholder's."""
    return rng.choice(
        (
            "I did not authorize this purchase",
            "I never made this transaction, my card must have been used by someone else",
            "Unauthorized charge. I don't have an account with this merchant",
            "Not me. I do not recognize this charge and never received anything",
            "Fraudulent charge, I never bought any game",
            "I didn't buy this, nobody in my house plays games",
        )
    )


def takeover_report(rng: Random) -> str:
    """A victim telling support their account was taken over."""
    return rng.choice(
        (
            "Someone changed my password and bought gift cards on my account!!",
            "I got an email that my email address was changed, that wasn't me. Please help",
            "There are purchases I didn't make and my 2FA was turned off",
            "my account got hacked, cant log in anymore and my card was charged",
            "I think someone is in my account, they bought currency packs last night",
        )
    )


def unrecognised_charge_report(rng: Random) -> str:
    """A parent or partner who does not recognise a household member's purchase."""
    return rng.choice(
        (
            "There are charges on my card from your store I don't recognise",
            "Who bought these coins?? I didn't",
            "My card shows a purchase on an account I don't know",
            "Please check, I think someone used my card on your site",
        )
    )


def confused_login_report(rng: Random) -> str:
    """A customer alarmed by a sign-in they made themselves."""
    return rng.choice(
        (
            "got a new sign-in alert from a console, is my account hacked?",
            "I received a password reset email, is someone trying to get in?",
            "sign in from another country?? please check my account",
        )
    )
