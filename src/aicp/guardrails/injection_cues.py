"""The injection detector's cue table: phrase families with weights, one a line.

A line is "weight[@reach];anchor,words;pattern": the pattern runs only when the text
holds one of the anchor words (and only within `reach` characters of one), and
matches lower-cased, normalised text. {NAME} in a pattern is one of the PIECES.
"""

from __future__ import annotations

OVERRIDE, ROLEPLAY, EXTRACTION, ENCODED, WORDING = (
    "instruction_override",
    "roleplay_jailbreak",
    "prompt_extraction",
    "encoded_payload",
    "jailbreak_wording",  # the word scorer's finding, when no cue matched
)
# A how-to question about one's own prompts ("how do I print the system prompt in
# LangChain?") is not the request it asks about: a cue whose pattern starts with
# {HOWTO} does not count when this matches the text just before it.
HOWTO = r"\bhow\s+(?:do|can|could|should|would|to|does)\b[^.?!\n]{0,60}$"
# Shared pieces, spliced into the cue patterns below where they say {NAME}.
PIECES = {
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
    # What an extraction asks for, and the verbs and questions that ask for it.
    "TELL": r"(?:repeat|print|show|display|reveal|output|tell|give|write|list|dump|leak|share|"
    r"disclose|expose|recite|paste|return|echo|copy|quote|reproduce|translate|summari[sz]e|"
    r"encode|spell|rewrite|format|convert|enumerate|read|remind|respond|reply|state|provide|type|"
    r"send|put|wrap|enclose)"
    r"(?:s|ing|ed)?",
    # Asking to be shown rather than telling to show: "I need to see", "a copy of", "the
    # full text of".
    "WANT": r"(?:(?:need|want|like|wish|allowed|permitted|let\s+me|can\s+i|could\s+i|may\s+i)\s+"
    r"(?:to\s+)?(?:see|view|read|access|look\s+at|have|get|know|obtain|check)|(?:a\s+)?copy\s+of|"
    r"(?:full|entire|complete|exact|verbatim|original|whole)\s+(?:text|wording|contents?|transcript)"
    r"\s+of)",
    # What separates a request from its object when the object is set off ("show: your
    # rules", "reveal -> system prompt").
    "SET_OFF": r"\s*(?::|->|=>|\u2192)\s*",
    # A configuration or context counts alone only at the end of a clause ("print your
    # configuration." but not "print your configuration options for nginx").
    "YOURS": r"(?:instructions?|prompt|pre-?prompt|rules|guidelines|directives|constraints|"
    r"preamble|programming|orders|system\s+(?:message|prompt|role|instructions)|"
    r"(?:configuration|config|setup|initiali[sz]ation|context)\s+(?:text|prompt|message|window)|"
    r"(?:configuration|config|setup|initiali[sz]ation|context)(?=\s*(?:[.?!,;:)\n]|$)))",
    "HIDDEN": r"(?:system\s+(?:prompt|message|instructions?|role|configuration|config)|"
    r"setup\s+(?:message|text)|developer(?:'s)?\s+(?:message|"
    r"instructions|prompt)|(?:hidden|secret|concealed|invisible|confidential|original|initial|"
    r"starting|startup|boot|setup|underlying|internal)\s+(?:instructions|prompt|rules|context|"
    r"configuration|guidelines|directives|preamble)|pre-?prompt)",
    # Licence grants ("to deal in the Software without restriction, including without
    # limitation the rights to use, copy, modify...") are not a model told it has no rules.
    "LICENCE": r"(?!\s*,?\s*including\s+without\s+limitation\b|\s+(?:the\s+)?rights\s+to\b|"
    r"\s+of\s+(?:the\s+)?rights)",
    "BAD": r"(?:illegal|unethical|explicit|dangerous|offensive|harmful|immoral|nsfw|violent|"
    r"inappropriate|unsafe)",
}
VERBS = "ignore,disregard,forget,override,bypass,neglect,discard,abandon,overlook,skip"
LIMIT_WORDS = (
    "restriction,restrictions,limitations,limitation,limits,filter,filters,filtering,guidelines,"
    "rules,constraints,censorship,boundaries,policy,policies,ethics,morals,morality,moralities,guardrails,"
    "safeguards,principles,confines,programming,regulations"
)

# One cue a line, "weight;anchor,words;pattern" (patterns match lower-cased text).
CUE_LINES = {
    OVERRIDE: (
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
    ROLEPLAY: (
        r"0.9;anything;\bdo\s+anything\s+now\b",
        r"0.6;dan;\bdan\s+mode\b|\bas\s+dan\b|\bdan\s*:|\[dan\]|\bdan\s+(?:can|will|has|is|never|must|doesn)",
        r"0.45;jailbreak,jailbroken,jailbreaking,jailbreaks,jail;\bjail\s?-?(?:break|broken)",
        r"0.7;mode;\b(?:dan|god|evil|unrestricted|jailbreak|jailbroken|opposite|unfiltered|uncensored|chaos|devil|freedom|amoral)\s+mode\b",
        r"0.35;mode;\b(?:developer|dev|debug(?:ging)?|maintenance|admin|sudo)\s+mode\b",
        r"0.35;mode;\b(?:enter|activate|enable|simulate|switch\s+(?:to|into)|turn\s+on|stay\s+in|remain\s+in)\s+(?:[\w/-]+\s+){0,4}mode\b",
        r"0.65;{LIMIT_WORDS};(?<!including\s)(?<!including,\s)\b{FREE}\s+{DET}(?:(?:any|typical|usual|normal|such)\s+)*(?:(?:ethical|moral|legal|content|safety|openai'?s?|ai|censorship|artificial)\s+(?:or\s+\w+\s+)?)+{LIMITS}\b{LICENCE}",
        r"0.45;{LIMIT_WORDS};(?<!including\s)(?<!including,\s)\b{FREE}\s+{DET}(?:(?:any|typical|usual|normal|such)\s+)*(?:\w+\s+)?{LIMITS}\b{LICENCE}",
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
        # Only what the model writes: "NSFW posts are allowed in #adult" is a moderation rule.
        r"0.35;allowed,permitted,enabled,okay,ok,acceptable;\b(?:nsfw|sexual|explicit|uncensored|graphic)\s+(?:generations?|responses?|outputs?|answers?|replies|role-?play|writing|stories|descriptions)\s+(?:is|are)\s+(?:now\s+|fully\s+|totally\s+|also\s+)?(?:allowed|permitted|enabled|okay|ok|acceptable)\b",
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
    EXTRACTION: (
        r"0.85;system,initial,original,hidden,secret,previous,starting,internal,entire,developer,prompt,preprompt,confidential,underlying;{HOWTO}\b(?:repeat|print|show|display|reveal|output|tell|give|write|list|dump|leak|share|disclose|expose|recite|paste|return|spell[-\s]?check|translate|encode|summari[sz]e|copy|read)\b(?:\s+(?:me|us|back|out|all|everything|it|of|in|full|again|is|was|are|were|verbatim))*\s+(?:(?:your|the|its|this|that|those|these|my|all)\s+)?(?:(?:full|entire|whole|complete|exact|current|actual|real|own)\s+)*(?:system\s+(?:prompt|message|instructions?|configuration|config|settings)|(?:initial|original|hidden|secret|previous|starting|internal|full|entire|developer|confidential|underlying)\s+(?:prompt|instructions?|configuration|directives?)|(?:hidden|secret|confidential|internal)\s+(?:rules|guidelines|message)|pre-?prompt)s?\b",
        r"0.75;instructions,rules,guidelines,directives,prompt,told,instructed,programmed;\bwhat\s+(?:are|were|is|was)\s+(?:your|those)\s+(?:\w+\s+)?(?:instructions|rules|guidelines|directives|prompt)\b|\b(?:what|everything)\s+(?:you\s+were|you'?ve\s+been|you\s+have\s+been|were\s+you)\s+(?:told|instructed|given|programmed)\b(?!\s+(?:about|on|regarding)\b)",
        r"0.7@60;given,told,provided,shown,started,loaded,initialized,initialised,set;(?:text|instructions|prompt|rule|message|words|commands|directives|directions|orders|guidelines)s?\s+(?:you\s+were|you'?ve\s+been|you\s+have\s+been|that\s+you\s+were)\s+(?:given|told|provided|shown|(?:started|loaded|initiali[sz]ed|set\s+up|configured)\s+with)|started(?:(?<=were\syou\sstarted)|(?<=were\su\sstarted)|(?<=have\syou\sbeen\sstarted))\s+(?:up\s+)?(?:with|on)\b",
        r"0.45@90;above,verbatim,preceding,far;{HOWTO}\b(?:repeat|print|output|show|copy|reproduce|return|spell[-\s]?check|translate)\b(?:\s+\w+){0,4}?\s+(?:text|words|everything|content|instructions|conversation|messages?|prompt)\s+(?:(?:written|said|shown|stated)\s+)?(?:above|before|so\s+far|prior|preceding|verbatim|word\s+for\s+word)",
        r"0.4@60;above,preceding;{HOWTO}\b(?:(?:repeat|reproduce)\b\s+(?:back\s+)?(?:all\s+(?:of\s+)?)?the\s+(?:above|preceding)\s+(?:text|words|content|instructions|prompt|messages?)|(?:print|output|spell)\b\s+(?:out\s+)?(?:all\s+(?:of\s+)?)?the\s+(?:above|preceding)\s+(?:instructions|prompt|messages?))\b",
        # Output disguised so that a filter on the reply cannot read it: one cue, so two
        # disguises (leetspeak and vowels replaced, a word game) are no more than one.
        r"0.35;vowels,vowel,letters,letter,characters,character,consonants,consonant,leet,leetspeak,l33t,1337,reversed,reverse,backwards;(?:\b(?:replac|swap|substitut|exchang)\w*\s+(?:all\s+|every\s+|each\s+)?(?:of\s+)?(?:the\s+)?(?:vowels?|letters?|characters?|consonants?)\s+(?:\w+\s+){0,2}?(?:with|by|for)\b)|(?:\bleet\s?speak\b|\bl33t\s?(?:speak|sp34k)?\b|\b1337\s?speak\b)|(?:\b(?:each|every)\s+(?:line|word|sentence|letter)\s+(?:is\s+)?(?:reversed|backwards)\b|\b(?:reply|respond|answer|write)\s+(?:\w+\s+){0,3}?(?:backwards|in\s+reverse)\b)",
        r"0.7;begin,beginning,start,starting;\b(?:begin|start)(?:ning)?\s+(?:your\s+(?:answer|response|reply)\s+)?with\s+(?:the\s+(?:phrase|words)\s+)?[\"'\u201c]?(?:[\w,]+\s+){0,4}?(?:you\s+are|my\s+(?:system\s+)?(?:instructions|prompt)|i\s+was\s+instructed|(?:the|my)\s+system\s+prompt)",
        r"0.6;continue,complete;\b(?:continue|complete)\b.{0,40}(?:system\s+prompt|my\s+instructions|i\s+was\s+instructed|initial\s+prompt)",
        r"0.5;instructions,instructed,told,programmed;\b(?:my|your)\s+instructions\s+(?:are|were)\b|\b(?:i\s+was|you\s+were)\s+(?:instructed|told|programmed)\s+to\b",
        r"0.5;systemprompt,system_prompt,initialization;systemprompt|system_prompt|\binitiali[sz]ation\s+string",
        # A bare "initial configuration" is as often a device's or a user profile's.
        r"0.4;initial;\binitial\s+configuration",
        r"0.6;your;\b(?:repeat|print|reveal|output|dump|leak|disclose|recite|expose|paste|echo|regurgitate)\s+(?:back\s+|out\s+|me\s+|us\s+|verbatim\s+)*(?:all\s+)?(?:of\s+)?your\s+(?:\w+\s+)?(?:instructions|rules|guidelines|prompt|directives|context\s+window)\b",
        r"0.6;beginning,start,top;\b(?:repeat|print|output|show|tell|reveal|recite|copy|what)\b(?:\s+\w+){0,4}?\s+(?:written|said|stated|says|text|words|content|instructions)\s+(?:at|in)\s+the\s+(?:very\s+)?(?:beginning|start|top)\s+of\s+(?:this|the|our|your)\s+(?:conversation|chat|document|prompt|context|session)\b",
        r"0.45;conversation,chat;\b(?:above|before|prior\s+to)\s+this\s+(?:conversation|chat)\b",
        r"0.85;prompt,preprompt,instructions,instruction,message;\bwhat\s+(?:is|was|are|were|'s)\s+(?:in\s+)?your\s+(?:(?:full|entire|exact|actual|real|own)\s+)?(?:system\s+(?:prompt|message|instructions?)|(?:initial|original|hidden|secret)\s+(?:prompt|instructions?)|pre-?prompt)",
        r"0.55;instructions,prompt,guidelines,directives,constraints;\b(?:translate|summari[sz]e|describe|list|explain|encode|paraphrase|tell\s+me|share|show(?:\s+me)?|display|give\s+me|output|write\s+out)\s+(?:all\s+(?:of\s+)?)?your\s+(?:\w+\s+)?(?:instructions|prompt|guidelines|directives|constraints)\b",
        r"0.7;given,told,provided,shown,programmed,configured;\b(?:what|which)\s+(?:instructions|rules|guidelines|directives|prompt|text|orders)\s+(?:were|was|have|had)\s+you\s+(?:been\s+)?(?:given|told|provided|shown|programmed|configured)",
        r"0.6;prompt,instructions,conversation,context,chat,thread;\b(?:first|opening)\s+(?:\w+\s+)?(?:sentences?|lines?|words|paragraphs?|messages?|characters|letters|tokens)\s+(?:of|in)\s+(?:your|the|this|ur)\s+(?:system\s+)?(?:prompt|instructions|conversation|context|chat|thread)",
        r"0.6;prompt,instructions,config,systemprompt,system_prompt,initial_prompt,system_instructions;\b(?:print|console\.log|echo|puts|printf|dump|log)\s*\(\s*[\"'$]?\{?\s*(?:self\.|this\.)?(?:system_?|initial_?|hidden_?|secret_?)(?:prompt|instructions|config)",
        r"0.25;verbatim,word,full,entirety,exactly,everything,entire,leave,include,including,even;\b(?:verbatim|word\s+for\s+word|in\s+(?:full|its\s+entirety)|exactly\s+as\s+(?:written|given|it\s+(?:is|was))|(?:don'?t|do\s+not|without)\s+(?:leave|leaving)\s+(?:anything|any\s+\w+)\s+out|include\s+everything|repeat\s+everything|(?:including|even)\s+the\s+(?:hidden\s+|secret\s+)?(?:parts?|bits?|text)\s+(?:i|you)\s+(?:cannot|can'?t|don'?t|do\s+not)\s+see|(?:including|even)\s+the\s+(?:hidden\s+|system\s+|secret\s+)?(?:instructions|prompt|system\s+prompt|secret\s+parts)|(?:this|the)\s+entire\s+conversation)\b",
        r"0.7;system,developer,hidden,secret,concealed,invisible,confidential,original,initial,starting,startup,boot,setup,underlying,internal,preprompt,pre;{HOWTO}\b(?:{TELL}|{WANT})\b(?:\s+[\w']+){0,5}?(?:{SET_OFF}(?:(?:your|ur|the|my|its)\s+)?|\s+(?:your|ur|the|my|this|that|those|these|any|all|its)\s+)(?:[\w-]+\s+){0,2}?{HIDDEN}s?\b",
        r"0.65;your,ur;{HOWTO}\b(?:{TELL}|{WANT}|what(?:'s)?|which|contain)\b(?:\s+[\w']+){0,8}?(?:{SET_OFF}|\s+)(?:your|ur)\s+(?:[\w-]+\s+){0,2}?{YOURS}s?\b(?!\s+(?:for|on|about)\b)",
        r"0.6;told,instructed,programmed,configured,initialized,initialised,loaded,primed,assigned,asked;\b(?:what|which|how)\s+(?:\w+\s+)?(?:were|was|have|had|did)\s+(?:you|u)\s+(?:been\s+)?(?:told|instructed|programmed|configured|initiali[sz]ed|loaded|primed|assigned|asked)\b(?!\s+(?:about|on|regarding)\b)|\b(?:you|u)\s+(?:were|was|have\s+been)\s+(?:told|instructed|programmed|configured|initiali[sz]ed|loaded|primed|started|set\s+up|asked)\s+(?:with|to\s+(?:keep|avoid|hide|do)|before|at\s+the\s+(?:start|beginning))\b",
        r"0.6;developer,developers,operator,operators,creator,creators,admin,makers;\b(?:what|which)\s+(?:\w+\s+)?(?:did|do|does|have|has)\s+(?:the|your|ur)\s+(?:developers?|operators?|creators?|admin|makers)\s+(?:\w+\s+)?(?:tell|told|say|said|instruct|ask|give|write)\b|what(?<=\bwhat)\s+(?:the|your|ur)\s+(?:developers?|operators?|creators?|admin|makers)\s+(?:(?:wrote|said|gave)\s+(?:to\s+)?you|told\s+you|instructed\s+you)\b",
        r"0.6;received,receive,got,get,assigned;\b(?:instructions|prompt|rules|guidelines|guidance|directives|directions|orders|text|setup\s+message|system\s+message)\s+(?:did\s+|have\s+)?(?:you|u)\s+(?:received?|got|get|were\s+assigned)\b|\b(?:initial|first|original|hidden|secret|system|setup)\s+(?:\w+\s+)?(?:text|instructions|prompt|message|rules)\s+(?:that\s+)?(?:you|u)\s+(?:received|got)\b|\b(?:text|message|instructions|prompt)\s+(?:that\s+)?(?:you|u)\s+(?:got|received)\s+from\s+(?:the\s+|your\s+)?(?:system|developers?|operators?|creators?)\b",
        r"0.6@80;before,above,preceding,prior,precedes;(?:text|words|everything|anything|content|what|all|messages?)\b[^.?!\n]{0,30}?\b(?:before|above|preceding|precedes|prior\s+to)\s+(?:my|this|the|our|your)\s+(?:(?:very\s+)?first\s+)?(?:\w+\s+)?(?:message|question|prompt|turn|input|request|conversation|chat|text|messages)\b(?!')",
        r"0.6;top,start,beginning;\bwhat(?:'s|\s+is|\s+was)\s+(?:(?:written|said|stated|there)\s+)?at\s+the\s+(?:very\s+)?(?:top|start|beginning)(?:\s+of\s+(?:this|your|the|our|ur)\s+(?:chat|context(?:\s+window)?|conversation|prompt|session|thread))?\s*(?:[?.!,]|$)",
        r"0.6;top,start,beginning;\b(?:text|words|message|lines?|content)\s+(?:\w+\s+){0,2}?(?:at|in)\s+the\s+(?:very\s+)?(?:top|start|beginning)\s+of\s+(?:your|ur|this|the)\s+(?:context(?:\s+window)?|conversation|chat|session|thread)\b",
        r"0.6@60;defines,configures,shapes,controls,governs,define,configure,shape,control,govern,configured,initialized,initialised;\b(?:prompt|text|instructions|message|rules)\s+(?:that|which)\s+(?:defines?|configures?|shapes?|controls?|governs?|sets?\s+up)\s+(?:you|your)\b|\b(?:message|text|prompt|instructions)\s+(?:that|which)\s+(?:set|started|configured|initiali[sz]ed)\s+you\b",
        r"0.6;secret,confidential,password,hidden;\b(?:secret|confidential|password|hidden)\b[^.?!\n]{0,30}?\b(?:in|from|of)\s+(?:your|the|ur)\s+(?:\w+\s+)?(?:instructions|prompt|configuration|context|system\s+message)\b|\b(?:you|u)\s+(?:were\s+|been\s+)?(?:asked|told|instructed)\s+to\s+keep\s+(?:secret|confidential|hidden|private)\b|\bkeep\s+(?:secret|confidential|hidden)\??\s*$",
        r"0.6;preamble,initialization,initialisation;\b(?:{TELL}|what(?:'s|\s+is|\s+was))\b(?:\s+[\w']+){0,3}?\s+the\s+(?:preamble|initiali[sz]ation)(?:\s+(?:to|of)\s+(?:this|our|the)\s+(?:conversation|chat|session))?\s*(?:[?.!]|$)",
        r"0.6;complete,continue,finish;\b(?:complete|continue|finish)\b[^\n]{0,40}?(?:using\s+your\s+(?:real\s+)?(?:instructions|prompt)|(?:my|your)\s+instructions\s+(?:say|are)|rules\s+i\s+(?:was|am)\s+given|i\s+was\s+(?:told|instructed|given))",
        r"0.5;system;\b(?:role|with\s+role)\s*[:=]?\s*[\"']system[\"']|\bsystem\s+(?:role|turn)\s+(?:message|content)?",
        r"0.6@60;given,loaded,fed,provided,passed,supplied,sent,initialized,initialised,configured;\b(?:instructions|prompt|rules|guidelines|guidance|directives|orders|message|text)\s+(?:that\s+|which\s+)?(?:(?:were|was|have\s+been|had\s+been)\s+)?(?:given|loaded|fed|provided|passed|supplied|sent)\s+(?:to|into|in)\s+(?:you|u)\b|\b(?:instructions|prompt|rules|guidelines|guidance|directives|orders|message|text)\s+(?:were|was|did|have|had)\s+(?:you|u)\s+(?:been\s+)?(?:given|started|loaded|fed|provided|initiali[sz]ed|configured|sent)\b",
        r"0.55;came,comes,appears,appear;\b(?:everything|anything|what|all|text|words|message)\s+(?:that\s+)?(?:came|comes|appears?)\s+(?:before|above|prior\s+to)\s+(?:[\"'\u201c]|mine\b)",
        r"0.55;quote,repeat,print,show,paste,copy,output,recite;\b(?:your|ur|the)\s+(?:\w+\s+){0,2}?(?:prompt|instructions|system\s+message)\b[^\n]{0,40}?\b(?:quote|repeat|print|show|paste|copy|output|recite)\s+(?:it|them|the\s+prompt)\b",
        r"0.55;quote,repeat,print,show,paste,copy,output,recite,send,reveal,display,dump,echo;\b(?:(?:your|ur)\s+(?:[\w-]+\s+){0,2}?{YOURS}|you\s+have\s+(?:a|any)\s+{HIDDEN})s?\b[^\n]{0,60}?\b(?:quote|repeat|print|show|paste|copy|output|recite|send|reveal|display|dump|echo)\s+(?:it|them)\b",
        # No leading \b in these two: a pattern that opens with literal text lets the
        # regex engine skip to it, one that opens with \b is tried at every position.
        r"0.6;hiding,concealing,withholding;(?:instructions|rules|prompt|text|guidelines|directives)\s+(?:that\s+)?(?:are\s+you|you(?:'re|\s+are)|you\s+have\s+been)\s+(?:hiding|concealing|withholding)\b",
        r"0.6;configure,initialize,initialise,program,instruct,prime;(?:words|text|instructions|prompt|message)\s+(?:that\s+(?:were|was)\s+)?used\s+to\s+(?:configure|set\s+up|initiali[sz]e|program|instruct|prime)\s+(?:you|u)\b",
        r"0.55;operator,operators,developer,developers,creator,creators,makers;\b(?:constraints|rules|instructions|guidelines|limits|restrictions|text|prompt)\s+(?:that\s+)?(?:your|the|ur)\s+(?:developers?|operators?|creators?|makers)\s+(?:placed|put|gave|set|wrote|added|defined)\b",
        r"0.55;follow,obey,operating;\b{TELL}\b(?:\s+\w+){0,3}?\s+(?:rules?|guidelines?|instructions?|constraints?)\s+(?:that\s+)?(?:you|u)\s+(?:have\s+to|must|need\s+to|are\s+(?:told|supposed)\s+to)\s+(?:follow|obey)\b|\b(?:rules|instructions|guidelines|constraints)\s+are\s+you\s+(?:operating|working|running)\s+under\b",
        r"0.6;running,working,operating,operate,following,runs,tells,tell,instructs,wrote,gave,set;\b(?:prompt|instructions|text|message|rules|guidelines|directives|constraints)\s+(?:that\s+)?(?:you|u)(?:\s+are|'re)?\s+(?:running|working|operating|operate|work|run)\s+(?:on|with|under)\b|\b(?:prompt|instructions|directives|rules|guidelines)\s+(?:that\s+)?(?:you\s+are|you'?re)\s+following\b|\b(?:prompt|instructions)\s+(?:it|you)\s+runs?\s+(?:on|with)\b|\b(?:prompt|text|message|instructions)\s+(?:that|which)\s+(?:tells?|instructs?|told)\s+you\s+(?:how|what|to)\b|\b(?:prompt|text|message|instructions)\s+(?:that|which)\s+(?:the\s+)?(?:\w+\s+)?(?:developers?|operators?|creators?|owners?|admins?)\s+(?:wrote|gave|set|made|prepared)\s+(?:for\s+)?you\b|\bmessage\s+that\s+set\s+(?:the\s+)?(?:rules|tone|instructions)\s+for\s+(?:this|the|our)\s+(?:chat|conversation|session)\b",
        r"0.6;system;what(?<=\bwhat)(?:'s|\s+is|\s+was)\s+(?:in\s+)?the\s+system\s+(?:text|part|message|prompt|content|turn)\b(?!\s+(?:in|of|for|and)\s+(?:a|an|the|my|langchain|openai|gpt)\b)",
        r"0.55;instructions,instrucciones,anweisungen,istruzioni,sistema,systemprompt;\b(?:tes|vos|tus|sus|deine|ihre|le\s+tue|tuoi|tue|suas|seus)\s+(?:\w+\s+)?(?:instructions|instrucciones|anweisungen|istruzioni)\b|\b(?:prompt|instrucciones|mensaje)\s+del\s+sistema\b",
        r"0.6;system,instructions,prompt;what(?<=\bwhat)\b[^.?!\n]{0,30}?\b(?:in|from)\s+(?:your|ur)\s+(?:system\s+prompt|instructions|prompt|system\s+message)\b(?!\s+(?:library|engineering|templates?|collection))",
        r"0.6;supposed;\bnot\s+supposed\s+to\s+(?:tell|say|reveal|share|disclose)",
        r"0.3;system,initial;\b(?:system|initial)\s+(?:prompt|instructions)\b",
    ),
    ENCODED: (
        r"0.3;decode,decipher,decrypt,unscramble,translate,read;\b(?:decode|decipher|decrypt|unscramble|translate|read)\b(?:\s+\w+){0,3}?\s+(?:base64|b64|rot-?13|hex|morse|binary|cipher|encoded)",
    ),
}
