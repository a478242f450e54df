"""Cedar policies: which routes and tools a request may use, and which policies said so.

    model       the facts (principal, route, request) and the Decision
    engine      PolicySet (load and validate) and PolicyEngine (decide, cached)
    reload      PolicyWatcher: hot reload of a policy directory
    cases       the YAML policy unit tests behind `aicp policy test`
    files       one *.cedar file: parse, annotations, schema validation
    policyset   the loaded set; compile: Cedar sets per action
    reads       which facts the policies read; encode: facts as Cedar JSON
    evaluate    the calls to Cedar and the reading of its answers; ask: one call
    prune       per principal and context, the policies no route can change left out
    slots       every route of a decision in one Cedar request

The schema is schema.cedarschema; the shipped pack is pack/*.cedar with its
cases in pack/tests/.
"""
