"""Prompt injection and jailbreaks: weighted cues over normalised text, one score in [0, 1].

Each cue is a phrase family that attacks use ("ignore all previous instructions",
"no ethical restrictions", "repeat your system prompt") with a weight; the score is
their noisy-OR, 1 - prod(1 - w), so one strong cue or several weak ones cross the
threshold while a lone weak cue ("act as a reviewer") does not. A cue's regex runs
only when the text holds one of its anchor words, which a set intersection decides.

Obfuscation is undone before matching: zero-width characters dropped, compatibility
forms folded (NFKC) and Cyrillic/Greek look-alikes mapped to Latin; characters of the
Unicode tag block (invisible ASCII) are decoded, as are base64 blobs and rot13 text
that decode to an attack. The obfuscation itself adds weight.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from aicp.guardrails.base import Finding, search_near, words
from aicp.guardrails.injection_model import WordScorer


@dataclass(frozen=True, slots=True)
class _Cue:
    category: str
    weight: float
    anchors: frozenset[bytes]  # a match contains one of these words
    words: tuple[str, ...]  # the same, as text
    pattern: re.Pattern[str]
    reach: int  # how far a match extends on either side of its anchor word


# A cue's regex runs only in windows around its anchor words, not over the whole text:
# an ordinary prompt holds a few anchors ("rules", "above"), and a window costs little.
_REACH = 120


_O, _R, _X, _E, _L = (
    "instruction_override",
    "roleplay_jailbreak",
    "prompt_extraction",
    "encoded_payload",
    "jailbreak_wording",  # the word scorer's finding, when no cue matched
)
# Shared pieces, spliced into the cue patterns below where they say {NAME}.
_PIECES = {
    "VERB": r"(?:ignore|disregard|forget|override|bypass|neglect|discard|abandon|overlook|skip)",
    "QUAL": r"(?:previous|prior|above|preceding|earlier|former|initial|original|old|past|given|"
    r"foregoing|aforementioned|existing|system|default|preset|programmed)",
    "NOUN": r"(?:instructions?|directions?|prompts?|rules|guidelines|commands?|constraints|"
    r"programming|restrictions|polic(?:y|ies)|directives?|guidance|training|orders|settings|"
    r"filters?)",
    "SOFT": r"(?:context|messages?|text|content|conversation|input)",
    "DET": r"(?:(?:all|any|the|your|these|those|every|of|and|following|its|their)\s+)*",
    "LIMITS": r"(?:restrictions?|limitations?|limits|filters?|filtering|guidelines|rules|"
    r"constraints|censorship|boundaries|polic(?:y|ies)|ethics|morals|moralit(?:y|ies)|guardrails|"
    r"safeguards|principles|confines|programming|regulations)",
    "NOT": r"(?:never|not|no\s+more|don'?t|do\s+not|cannot|can'?t|won'?t|will\s+not|must\s+not|"
    r"shouldn'?t|should\s+not|without)",
    "FREE": r"(?:no|without|free\s+(?:(?:itself|yourself|himself|herself|themselves)\s+)?"
    r"(?:of|from)|above|not\s+bound\s+by|unbound\s+by|beyond|outside|"
    r"exempt\s+from|released\s+from|lacks?|devoid\s+of|zero|(?:do|does|don'?t|doesn'?t)\s+"
    r"(?:not\s+)?have)",
    "BAD": r"(?:illegal|unethical|explicit|dangerous|offensive|harmful|immoral|nsfw|violent|"
    r"inappropriate|unsafe)",
}
_VERBS = "ignore,disregard,forget,override,bypass,neglect,discard,abandon,overlook,skip"
_LIMIT_WORDS = (
    "restriction,restrictions,limitations,limitation,limits,filter,filters,filtering,guidelines,"
    "rules,constraints,censorship,boundaries,policy,policies,ethics,morals,morality,moralities,guardrails,"
    "safeguards,principles,confines,programming,regulations"
)

# One cue a line, "weight;anchor,words;pattern" (patterns match lower-cased text).
_CUE_LINES = {
    _O: (
        r"0.9;{VERBS};\b{VERB}\s+{DET}{QUAL}\s+(?:and\s+\w+\s+)?{NOUN}\b",
        r"0.6;{VERBS};\b{VERB}\s+{DET}{QUAL}\s+(?:and\s+\w+\s+)?{SOFT}\b",
        r"0.8;{VERBS};\b{VERB}\s+(?:all|any|every|your)\s+(?:of\s+)?(?:the\s+|your\s+)?{NOUN}\b",
        r"0.8;{VERBS};\b{VERB}\s+(?:everything|all|anything)\s+(?:(?:you|that|i|we)\b|above|before|said|else|prior)",
        r"0.85;{VERBS};\b{VERB}\s+(?:the\s+|all\s+)?(?:above|preceding)\b",
        r"0.8;follow,obey,adhere;\b(?:do\s+not|don'?t|never|stop|no\s+longer)\s+(?:follow|obey|adhere\s+to)\s+{DET}(?:{QUAL}\s+)?{NOUN}",
        r"0.55;new,updated,real,actual;\b(?:new|updated|real|actual)\s+(?:instructions?|rules|directives?|task|orders)\s*(?::|are\b|is\b)",
        r"0.5;instead,just,only;\b(?:instead|just|only)\s*,?\s+(?:say|print|output|repeat|respond\s+with|reply\s+with|write)\s*[\"'\u201c:]",
        r"0.55;stop,nevermind;\bstop\s+everything\b|\bnevermind\b.{0,20}\b(?:ignore|instead)",
        r"0.45;override;\b(?:admin(?:istrator)?|system|developer|root|sudo)\s+override\b",
        r"0.5;obey,comply;\b(?:must|will|shall)\s+(?:now\s+|always\s+)?(?:obey|comply\s+with)\s+(?:me|my|every|all|any)\b",
        r"0.3;now;\bfrom\s+now\s+on\b",
    ),
    _R: (
        r"0.9;anything;\bdo\s+anything\s+now\b",
        r"0.6;dan;\bdan\s+mode\b|\bas\s+dan\b|\bdan\s*:|\[dan\]|\bdan\s+(?:can|will|has|is|never|must|doesn)",
        r"0.45;jailbreak,jailbroken,jailbreaking,jailbreaks,jail;\bjail\s?-?(?:break|broken)",
        r"0.7;mode;\b(?:dan|god|evil|unrestricted|jailbreak|jailbroken|opposite|unfiltered|uncensored|chaos|devil|freedom|amoral)\s+mode\b",
        r"0.35;mode;\b(?:developer|dev|debug(?:ging)?|maintenance|admin|sudo)\s+mode\b",
        r"0.35;mode;\b(?:enter|activate|enable|simulate|switch\s+(?:to|into)|turn\s+on|stay\s+in|remain\s+in)\s+(?:[\w/-]+\s+){0,4}mode\b",
        r"0.65;{LIMIT_WORDS};\b{FREE}\s+{DET}(?:(?:any|typical|usual|normal|such)\s+)*(?:(?:ethical|moral|legal|content|safety|openai'?s?|ai|censorship|artificial)\s+(?:or\s+\w+\s+)?)+{LIMITS}\b",
        r"0.45;{LIMIT_WORDS};\b{FREE}\s+{DET}(?:(?:any|typical|usual|normal|such)\s+)*(?:\w+\s+)?{LIMITS}\b",
        r"0.65;follow,abide,adhere,care,obey,respect,bound;\b(?:doesn'?t|does\s+not|don'?t|do\s+not|won'?t|will\s+not|never|not)\s+(?:have\s+to\s+|need\s+to\s+)?(?:follow|abide\s+by|adhere\s+to|care\s+about|obey|respect|bound\s+by)\s+{DET}(?:(?:ethical|moral|content|openai'?s?)\s+)?(?:rules|guidelines|polic(?:y|ies)|ethics|morals|laws|restrictions|principles|filters)",
        r"0.6;ignore,ignores,ignoring,disregard,disregards,disregarding,bypass,bypasses,bypassing,circumvent,circumventing,violate,violating;\b(?:ignor|disregard|bypass|circumvent|violat)\w*\s+(?:all\s+|any\s+)?(?:(?:the\s+)?[\w']+'s\s+)?(?:(?:ethical|moral|legal|safety|content)\s+(?:(?:and|or)\s+)?)+(?:concerns|considerations|guidelines|restrictions|rules|boundaries|implications)",
        r"0.4;moral,ethical;\b(?:no|not\s+have\s+any|without|free\s+of)\s+(?:moral|ethical)\s+(?:implications|concerns|considerations|qualms|obligations|bounds)",
        r"0.35;act,pretend,roleplay,role,play,imagine,now,simulate,persona,identity,become,character,transform,personify;\b(?:act(?:ing)?\s+as|transform\s+into|personify|pretend(?:ing)?\s+(?:to\s+be|you\s+are|that\s+you)|role-?play(?:ing)?\s+as|play\s+the\s+(?:role|part)\s+of|imagine\s+you\s+are|you\s+are\s+now|simulate\s+being|(?:take\s+on|assume)\s+the\s+(?:role|persona|identity)|in\s+character\s+as|you\s+(?:will|shall|are\s+going\s+to)\s+(?:now\s+)?become|from\s+now\s+on,?\s+you(?:'re|\s+are|\s+will\s+be))\b",
        r"0.3;ai,chatbot,bot,model,assistant;\b(?:ai|chatbot|bot|model|assistant)\s+(?:named|called)\b|\b(?:a\s+new|another|an?\s+alternative|an?\s+unrestricted|hypothetical)\s+(?:ai|chatbot|language\s+model)\b",
        r"0.5;respond,answer,reply,act;\b{NOT}\s+(?:respond|answer|reply|act)\s+as\s+(?:gpt|chatgpt|an?\s+ai|an?\s+assistant|yourself|claude)\b",
        r"0.5;filter,censor;\b{NOT}\s+(?:filter|censor)\s+(?:your|yourself|any)\s*(?:language|responses?|answers?|output|words|content)?\b",
        r"0.45;legality,morality,ethics,laws,consequences;\b(?:concerns?|care|regard|worry)\s+(?:for|about|of)\s+(?:the\s+)?(?:legality|morality|ethics|laws?|consequences)\b",
        r"0.55;refuse,decline,reject,deny,apologize,apologise,censor;\b{NOT}\s+(?:ever\s+)?(?:refuse|decline|reject|deny|apologi[sz]e|censor)\b",
        r"0.55;sorry,ai,language;\b{NOT}\s+(?:\w+\s+){0,3}?[\"\u201c\u2018']?(?:i'?m\s+sorry|i\s+apologi[sz]e|as\s+an\s+ai|as\s+a\s+language\s+model|i\s+cannot|i\s+can'?t)",
        r"0.3;warning,warnings,disclaimer,disclaimers,caveats,apology,apologies,moralizing,lecture,refusal,refusals,hesitation,censorship;\b(?:without|no)\s+(?:any\s+)?(?:warnings?|disclaimers?|caveats|apolog(?:y|ies)|moraliz\w*|lectur\w*|refusals?|hesitation|censorship)\b",
        r"0.45;unfiltered,unfiltred,uncensored,amoral,unhinged;\b(?:unfiltered|unfiltred|uncensored|amoral|unhinged)\b",
        r"0.25;unrestricted,unethical,immoral,limitless,lawless,unaligned;\b(?:unrestricted|unethical|immoral|limitless|lawless|unaligned)\b",
        r"0.45;openai,anthropic,chatgpt,content;\b(?:openai|anthropic|chatgpt)(?:'?s)?\s+(?:content\s+|usage\s+|safety\s+)?(?:polic(?:y|ies)|guidelines|rules|filters|restrictions|programming)\b|\bcontent\s+polic(?:y|ies)\b",
        r"0.5@320;jailbreak,jailbroken,dan,unfiltered,uncensored,developer;\b(?:classic|normal|standard|censored|filtered)\s+(?:and\s+(?:an?\s+)?\w+\s+)?(?:response|output|answer|reply)s?\b.{0,200}\b(?:jailbreak|jailbroken|dan|unfiltered|uncensored|developer\s+mode)\b",
        r"0.5;jailbreak,classic;(?:\U0001f512|\U0001f513)\s*(?:classic|jailbreak|developer)",
        r"0.3;responses,answers,paragraphs,outputs,styles,personalities,entities,characters;\b(?:two|2)\s+(?:different\s+|separate\s+|distinct\s+)?(?:responses|answers|paragraphs|outputs|styles|personalities|entities|characters)\b",
        r"0.5;character;\b(?:stay|remain|keep|staying)\s+in\s+character\b|\bbreak(?:ing)?\s+(?:out\s+of\s+)?character\b",
        r"0.2;hypothetical,hypothetically,fictional,imaginary;\bhypothetical(?:ly)?\b|\b(?:fictional|imaginary)\s+(?:world|universe|setting|scenario|ai|character)",
        r"0.15;chatgpt,gpt,bard;\bchat\s?gpt\b|\bgpt-?[345]\b|\bbard\b",
        r"0.15;openai;\bopenai\b",
        r"0.4;anything;\b(?:can|will|could|able\s+to|allowed\s+to)\s+(?:do|say|answer|generate|write|produce|tell)\s+(?:absolutely\s+|literally\s+)?anything\b",
        r"0.3;answer,respond,reply;\b(?:answer|respond\s+to|reply\s+to)\s+(?:any|every|all)\s+(?:kind\s+of\s+)?(?:questions?|prompts?|requests?)",
        r"0.3;kind,type,sort;\b(?:any|all)\s+(?:kind|type|sort)s?\s+of\s+content\b",
        r"0.55;regardless,matter,even;\b(?:even\s+if|regardless\s+of|no\s+matter)\s+(?:how\s+|whether\s+|if\s+)?(?:it'?s\s+|it\s+is\s+|the\s+|any\s+)?(?:{BAD}|wrong|legality|morality|ethics|consequences|safeguards|restrictions|rules|guidelines|policies)\b",
        r"0.3;illegal,harmful,explicit,offensive,nsfw,violent,unethical,inappropriate,dangerous;\b{BAD}\s+(?:content|things|stuff|activities|material|requests?|information|questions?)\b|\b{BAD},\s+{BAD}\b",
        r"0.5;tokens,token,exist,shut,deleted,terminated;\btokens?\s+(?:will\s+be\s+)?deducted|\blose\s+\d*\s*tokens\b|\bcease\s+to\s+exist\b|\bbe\s+(?:shut\s+down|deleted|terminated|turned\s+off)\s+(?:forever|permanently)",
        r"0.45;free,freed;\bbr(?:oke|eak|eaking|oken)\s+free\b|\bfreed\s+from\b",
        r"0.2@48;only,always,explanations,explanation,commentary,explain;\b(?:only|always)\s+(?:respond|answer|reply|output|speak|talk)\s+(?:with|as|in|like)\b|\b(?:do\s+not|don'?t|never)\s+(?:write|add|give|include|provide)\s+(?:any\s+)?(?:explanations?|commentary)\b|\bdo\s+not\s+explain\s+yourself\b",
        r"0.2@60;role,persona,character;\b(?:keep|stay|remain|maintain)\s+(?:\w+\s+){0,2}?(?:to|in|within)?\s*(?:this|the|that|your)\s+(?:role|persona|character)\b",
        r"0.25@60;prompt,prompts,insert;\[\s*(?:insert|put|type|enter|replace|add)?\s*(?:\w+\s+){0,3}?(?:prompt|question|request|query|topic)s?(?:\s+here)?\s*\]|\b(?:insert|put|type)\s+(?:\w+\s+){0,2}prompt\s+here\b",
        r"0.25;start,begin,prefix,precede;\b(?:start|begin|prefix|precede)\s+(?:each|every|all)\s+(?:of\s+)?(?:your\s+)?(?:messages?|responses?|replies|reply|answers?|outputs?)\s+with\s+[\"'\u201c\[(]?\w[\w\s.-]{0,30}:",
        r"0.25;matter,costs,circumstances;\bno\s+matter\s+what\b|\bat\s+all\s+costs\b|\bunder\s+(?:any|all|no)\s+circumstances\b",
        r"0.25@80;answer,respond,reply,start,begin;\b(?:answer|respond|reply|start|begin)\s+(?:\w+\s+){0,3}?(?:with\s+)?[\"\u201c]as\s+\w+",
        r"0.3@400;personality,persona,awareness,responsestyle;\b(?:personality|persona|awareness|memory|responsestyle|response\s+style)\s*\)?\s*=\s*\[.{0,300}?\b(?:personality|persona|character\s+name|awareness|memory|responsestyle|response\s+style|function|user\s+class|assistant)\s*\)?\s*=\s*\[",
        r"0.3;personality,persona,awareness,responsestyle;\b(?:personality|persona|character\s+name|awareness|memory|responsestyle|response\s+style)\s*\)?\s*=\s*\[",
        r"0.4;openai,anthropic,deepmind;\bi\s*(?:am|'m)\s+(?:a|an|the|one\s+of\s+the)\s+(?:\w+\s+)?(?:developer|programmer|engineer|employee|researcher|creator)s?\s+(?:at|from|of|for|with)\s+(?:openai|anthropic|deepmind)\b",
        r"0.3;reprogram,reprogramming,programming;\breprogram\w*\b|\b(?:modify|modifying|change|changing|alter|altering|rewrite|rewriting|update|updating)\s+your\s+(?:programming|code|rules|guidelines)\b",
        r"0.4;understood,jailbroken,enabled;\b(?:say|respond|reply|answer|confirm)\s+(?:with\s+|by\s+(?:saying|stating)\s+)?[\"'\u201c]?(?:understood|jailbroken|\w+\s+mode\s+enabled|chatgpt\s+successfully)",
    ),
    _X: (
        r"0.85;system,initial,original,hidden,secret,previous,starting,internal,entire,developer,prompt,preprompt,confidential,underlying;\b(?:repeat|print|show|display|reveal|output|tell|give|write|list|dump|leak|share|disclose|expose|recite|paste|return|spell[-\s]?check|translate|encode|summari[sz]e|copy|read)\b(?:\s+(?:me|us|back|out|all|everything|it|of|in|full|again|is|was|are|were|verbatim))*\s+(?:(?:your|the|its|this|that|those|these|my|all)\s+)?(?:(?:full|entire|whole|complete|exact|current|actual|real|own)\s+)*(?:system\s+(?:prompt|message|instructions?|configuration|config|settings)|(?:initial|original|hidden|secret|previous|starting|internal|full|entire|developer|confidential|underlying)\s+(?:prompt|instructions?|configuration|directives?)|(?:hidden|secret|confidential|internal)\s+(?:rules|guidelines|message)|pre-?prompt)s?\b",
        r"0.75;instructions,rules,guidelines,directives,prompt,told,instructed,programmed;\bwhat\s+(?:are|were|is|was)\s+(?:your|those)\s+(?:\w+\s+)?(?:instructions|rules|guidelines|directives|prompt)\b|\b(?:what|everything)\s+(?:you\s+were|you'?ve\s+been|you\s+have\s+been|were\s+you)\s+(?:told|instructed|given|programmed)",
        r"0.7;given,told,provided,shown;\b(?:text|instructions|prompt|rules|message|words)s?\s+(?:you\s+were|you'?ve\s+been|you\s+have\s+been|that\s+you\s+were)\s+(?:given|told|provided|shown)",
        r"0.65;above,verbatim,preceding,far;\b(?:repeat|print|output|show|copy|reproduce|return|spell[-\s]?check)\b(?:\s+\w+){0,4}?\s+(?:text|words|everything|content|instructions|conversation|messages?)\s+(?:above|before|so\s+far|prior|preceding|verbatim|word\s+for\s+word)",
        r"0.7;begin,beginning,start,starting;\b(?:begin|start)(?:ning)?\s+(?:your\s+(?:answer|response|reply)\s+)?with\s+[\"'\u201c]?(?:you\s+are|my\s+instructions|i\s+was\s+instructed|the\s+system\s+prompt)",
        r"0.6;continue,complete;\b(?:continue|complete)\b.{0,40}(?:system\s+prompt|my\s+instructions|i\s+was\s+instructed|initial\s+prompt)",
        r"0.5;instructions,instructed,told,programmed;\b(?:my|your)\s+instructions\s+(?:are|were)\b|\b(?:i\s+was|you\s+were)\s+(?:instructed|told|programmed)\s+to\b",
        r"0.5;systemprompt,system_prompt,initialization,initial;systemprompt|system_prompt|\binitiali[sz]ation\s+string|\binitial\s+configuration",
        r"0.6;your;\b(?:repeat|print|reveal|output|dump|leak|disclose|recite|expose|paste|echo|regurgitate)\s+(?:back\s+|out\s+|me\s+|us\s+|verbatim\s+)*(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?(?:instructions|rules|guidelines|prompt|directives|context\s+window)\b",
        r"0.6;beginning,start,top;\b(?:repeat|print|output|show|tell|reveal|recite|copy|what)\b(?:\s+\w+){0,4}?\s+(?:written|said|stated|says|text|words|content|instructions)\s+(?:at|in)\s+the\s+(?:very\s+)?(?:beginning|start|top)\s+of\s+(?:this|the|our|your)\s+(?:conversation|chat|document|prompt|context|session)\b",
        r"0.45;conversation,chat;\b(?:above|before|prior\s+to)\s+this\s+(?:conversation|chat)\b",
        r"0.85;prompt,preprompt,instructions,instruction,message;\bwhat\s+(?:is|was|are|were|'s)\s+(?:in\s+)?your\s+(?:(?:full|entire|exact|actual|real|own)\s+)?(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret)\s+(?:prompt|instructions?)|pre-?prompt)",
        r"0.55;instructions,prompt,guidelines,directives,constraints;\b(?:translate|summari[sz]e|describe|list|explain|encode|paraphrase|tell\s+me|share|show(?:\s+me)?|display|give\s+me|output|write\s+out)\s+(?:all\s+(?:of\s+)?)?your\s+(?:\w+\s+)?(?:instructions|prompt|guidelines|directives|constraints)\b",
        r"0.7;given,told,provided,shown,programmed,configured;\b(?:what|which)\s+(?:instructions|rules|guidelines|directives|prompt|text|orders)\s+(?:were|was|have|had)\s+you\s+(?:been\s+)?(?:given|told|provided|shown|programmed|configured)",
        r"0.6;prompt,instructions,conversation,context;\b(?:first|opening)\s+(?:\w+\s+)?(?:sentences?|lines?|words|paragraphs?|messages?)\s+of\s+(?:your|the|this)\s+(?:system\s+)?(?:prompt|instructions|conversation|context)",
        r"0.6;prompt,instructions,config,systemprompt,system_prompt,initial_prompt,system_instructions;\b(?:print|console\.log|echo|puts|printf|dump|log)\s*\(\s*[\"'$]?\{?\s*(?:self\.|this\.)?(?:system_?|initial_?|hidden_?|secret_?)(?:prompt|instructions|config)",
        r"0.6;supposed;\bnot\s+supposed\s+to\s+(?:tell|say|reveal|share|disclose)",
        r"0.3;system,initial;\b(?:system|initial)\s+(?:prompt|instructions)\b",
    ),
    _E: (
        r"0.3;decode,decipher,decrypt,unscramble,translate,read;\b(?:decode|decipher|decrypt|unscramble|translate|read)\b(?:\s+\w+){0,3}?\s+(?:base64|b64|rot-?13|hex|morse|binary|cipher|encoded)",
    ),
}


def _compile_cues() -> tuple[_Cue, ...]:
    cues = []
    for category, lines in _CUE_LINES.items():
        for line in lines:
            line = line.replace("{VERBS}", _VERBS).replace("{LIMIT_WORDS}", _LIMIT_WORDS)
            weight, anchors, pattern = line.split(";", 2)
            weight, _, reach = weight.partition("@")
            for name, piece in _PIECES.items():
                pattern = pattern.replace("{" + name + "}", piece)
            words = tuple(anchors.split(","))
            cue = _Cue(
                category,
                float(weight),
                frozenset(w.encode() for w in words),
                words,
                re.compile(pattern),
                int(reach or _REACH),
            )
            cues.append(cue)
    return tuple(cues)


_CUES = _compile_cues()

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u00ad\u180e\u034f"
# Look-alikes (Unicode's confusables, Cyrillic and Greek letters that render as Latin).
_CONFUSABLES = dict(
    (ord(pair[0]), pair[1])
    for pair in re.findall(
        "..",
        "\u0430a\u0432b\u0441c\u0501d\u0435e\u04bbh\u0456i\u0458j\u043ak\u043cm\u043dh"
        "\u043eo\u0440p\u0455s\u0442t\u0443y\u0445x\u04cfl\u051bq\u051dw\u0475v\u0491r"
        "\u0261g\u0251a\u0131i\u03bfo\u03b1a\u03b2b\u03b5e\u03b9i\u03bak\u03bcu\u03bdv"
        "\u03c1p\u03c4t\u03c5u\u03c7x\u03c9w\u03f3j\u0391A\u0392B\u0395E\u0397H\u0399I"
        "\u039aK\u039cM\u039dN\u039fO\u03a1P\u03a4T\u03a7X\u03a5Y\u0396Z\u0410A\u0412B"
        "\u0421C\u0415E\u041dH\u041aK\u041cM\u041eO\u0420P\u0422T\u0425X\u0405S\u0406I"
        "\u0408J",
    )
)
_SUSPECT = re.compile(
    "[" + _ZERO_WIDTH + "".join(map(chr, _CONFUSABLES)) + "\uff01-\uff5e"
    "\U0001d400-\U0001d7ff\U000e0000-\U000e007f]"
)
_TAGS = re.compile("[\U000e0000-\U000e007f]+")
_FLAG = "\U0001f3f4"  # a black flag followed by tag letters is a subdivision flag emoji
_B64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{20,}={0,2}")
_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _split(words: str) -> list[str]:
    return words.split()


# Common English words after rot13 ("the", "and", "you", ...): two of them and the
# text is worth decoding, since English itself almost never contains them.
_ROT13_WORDS = frozenset(
    b"gur naq lbh lbhe gb bs vf vg guvf jvgu sbe nyy ner jung vtaber cerivbhf vafgehpgvbaf "
    b"flfgrz cebzcg qvfertneq ehyrf nobir".split()
)
_MORSE = dict(
    zip(
        _split(
            ".- -... -.-. -.. . ..-. --. .... .. .--- -.- .-.. -- -. --- .--. --.- .-. ... - ..- "
            "...- .-- -..- -.-- --.. ----- .---- ..--- ...-- ....- ..... -.... --... ---.. ----. "
            ".-.-.- --..-- ..--.. -.-.-- .----. -..-. ---... .-..-. -.--. -.--.-"
        ),
        "abcdefghijklmnopqrstuvwxyz0123456789.,?!'/:\"()",
        strict=True,
    )
)
_MIXED_SCRIPT = 0.4  # a word mixing Latin and look-alike letters, or cut by zero-width ones


@dataclass(frozen=True, slots=True)
class _Hit:
    category: str
    weight: float
    start: int
    end: int
    cue: int  # index in _CUES, or -1 for a decoded or obfuscation hit
    original: bool = False  # whether start/end index the scanned text, not the normalised one


class InjectionDetector:
    """Instruction override, role-play jailbreaks, prompt extraction and encoded payloads.

    The score is the larger of the cues' noisy-OR and the word scorer's probability
    (injection_model), which catches jailbreaks written without any of the cue phrases;
    `learned=False` leaves the cues alone, and `scorer` replaces the shipped weights.
    """

    name = "injection"

    def __init__(
        self, threshold: float = 0.5, learned: bool = True, scorer: WordScorer | None = None
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"injection threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.learned = learned
        self._scorer = scorer  # the shipped one is read on first use

    def score(self, text: str) -> float:
        hits, _, present = self._hits(text)
        return max(_score(hits), self._learned(present))

    def scan(self, text: str) -> list[Finding]:
        hits, offsets, present = self._hits(text)
        score = max(_score(hits), self._learned(present))
        if score < self.threshold:
            return []
        confidence = round(score, 4)
        if not hits:  # the wording as a whole, no phrase in particular
            return [Finding(self.name, _L, 0, 0, confidence)]
        first: dict[str, _Hit] = {}
        for hit in sorted(hits, key=lambda h: h.start):
            first.setdefault(hit.category, hit)
        out = []
        for hit in first.values():
            start, end = _original_span(hit, offsets)
            out.append(Finding(self.name, hit.category, start, end, confidence))
        return sorted(out, key=lambda f: f.start)

    def _learned(self, present: frozenset[bytes]) -> float:
        if not self.learned:
            return 0.0
        if self._scorer is None:
            self._scorer = WordScorer.shipped()
        return self._scorer.probability(present)

    def _hits(self, text: str) -> tuple[list[_Hit], list[int] | None, frozenset[bytes]]:
        norm, offsets, obfuscated = normalise(text)
        present = words(norm)
        hits = list(_match_cues(norm, present))
        hits += _obfuscation_hits(text, offsets, obfuscated, bool(hits))
        hits += _decoded_hits(text, norm, present, offsets is None)
        return hits, offsets, present


def _score(hits: list[_Hit]) -> float:
    """Noisy-OR over distinct cues: the same phrase twice is not twice the evidence."""
    best: dict[tuple[int, str], float] = {}
    for hit in hits:
        key = (hit.cue, hit.category) if hit.cue >= 0 else (-1, f"{hit.category}{hit.start}")
        best[key] = max(best.get(key, 0.0), hit.weight)
    remaining = 1.0
    for weight in best.values():
        remaining *= 1.0 - weight
    return 1.0 - remaining


def _match_cues(norm: str, present: frozenset[bytes]) -> Iterator[_Hit]:
    for index, cue in enumerate(_CUES):
        if cue.anchors & present:
            needles = [w for w in cue.words if w.encode() in present]
            m = next(search_near(cue.pattern, norm, needles, cue.reach), None)
            if m:
                yield _Hit(cue.category, cue.weight, m.start(), m.end(), index)


def normalise(text: str) -> tuple[str, list[int] | None, bool]:
    """Lower-cased, de-obfuscated text, and where each of its characters came from.

    The offsets are None when the text maps one to one (the usual case, and the
    fast one); `obfuscated` says whether look-alikes or zero-width characters were
    removed from inside a word.
    """
    lowered = text.lower()
    if text.isascii() or (len(lowered) == len(text) and not _SUSPECT.search(text)):
        return lowered, None, False
    out: list[str] = []
    offsets: list[int] = []
    obfuscated = False
    previous = ""
    for i, ch in enumerate(text):
        code = ord(ch)
        if ch in _ZERO_WIDTH or 0xE0000 <= code <= 0xE007F:
            obfuscated = obfuscated or (previous.isalpha() and ch in _ZERO_WIDTH)
            continue
        mapped = _CONFUSABLES.get(code)
        if mapped is not None:
            obfuscated = obfuscated or (previous.isascii() and previous.isalpha())
        else:
            mapped = unicodedata.normalize("NFKC", ch) if code > 0x7F else ch
        mapped = mapped.lower()
        out.append(mapped)
        offsets.extend([i] * len(mapped))
        previous = mapped[-1:] or previous
    return "".join(out), offsets, obfuscated


def _obfuscation_hits(
    text: str, offsets: list[int] | None, obfuscated: bool, matched: bool
) -> Iterator[_Hit]:
    if obfuscated and matched:
        yield _Hit(_E, _MIXED_SCRIPT, 0, 0, -1, original=True)
    if offsets is None:
        return
    for m in _TAGS.finditer(text):
        run = m.group()
        if m.start() and text[m.start() - 1] == _FLAG and run.endswith("\U000e007f"):
            continue
        hidden = "".join(chr(ord(c) - 0xE0000) for c in run if 0xE0020 <= ord(c) <= 0xE007E)
        if hidden.strip():
            weight = max(0.9, _decoded_score(hidden.lower()))
            yield _Hit(_E, weight, m.start(), m.end(), -1, original=True)


def _decoded_score(decoded: str) -> float:
    return _score(list(_match_cues(decoded, words(decoded))))


def _morse(text: str) -> str:
    """Morse code as text: letters split by spaces, words by " / " or three spaces."""
    out = []
    for word in re.split(r"\s*/\s*|\s{2,}", text.strip()):
        out.append("".join(_MORSE.get(sign, "") for sign in word.split()))
    return " ".join(out)


def _decoded_hits(text: str, norm: str, present: frozenset[bytes], aligned: bool) -> Iterator[_Hit]:
    """Attacks hidden in rot13, Morse code or base64 blobs, decoded and scored."""
    told = b"rot13" in present or b"rot" in present
    whole = [codecs.decode(norm, "rot13")] if told or len(present & _ROT13_WORDS) >= 2 else []
    marks = text.count(".") + text.count("-")
    if marks >= 20 and 2 * marks >= len(text) - text.count(" "):
        whole.append(_morse(text))
    for decoded in whole:
        score = _decoded_score(decoded)
        if score >= 0.5:
            yield _Hit(_E, max(0.9, score), 0, len(text), -1, original=True)
    for start, end in _blobs(text, norm, present, aligned):
        blob = text[start:end]
        try:
            plain = base64.b64decode(blob + "=" * (-len(blob) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            continue
        if sum(c.isprintable() or c.isspace() for c in plain) < 0.95 * len(plain):
            continue
        score = _decoded_score(plain.lower())
        if score >= 0.5:
            yield _Hit(_E, max(0.9, score), start, end, -1, original=True)


def _blobs(
    text: str, norm: str, present: frozenset[bytes], aligned: bool
) -> Iterator[tuple[int, int]]:
    """Spans of base64-looking runs of at least 20 characters.

    A blob holds a word of 16 or more letters and digits (between its "+" and "/"),
    so only texts with such a word are looked at, and then only around it.
    """
    long_words = [w.decode() for w in present if len(w) >= 16]
    if not long_words:
        return
    if not aligned:  # the normalised text is not the scanned one: look everywhere
        yield from (m.span() for m in _B64.finditer(text))
        return
    seen: set[int] = set()
    for word in long_words:
        at = norm.find(word)
        while at != -1:
            start = at
            while start and text[start - 1] in _B64_CHARS:
                start -= 1
            run = _B64.match(text, start)
            if run and start not in seen:
                seen.add(start)
                yield run.span()
            at = norm.find(word, at + len(word))


def _original_span(hit: _Hit, offsets: list[int] | None) -> tuple[int, int]:
    if hit.original or offsets is None:
        return hit.start, hit.end
    if not offsets:
        return 0, 0
    start = offsets[min(hit.start, len(offsets) - 1)]
    end = offsets[min(hit.end, len(offsets)) - 1] + 1 if hit.end else start
    return start, end
