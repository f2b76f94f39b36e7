"""The policy workbench (docs/workbench.md): a web page at /workbench where business users write,
check, preview and roll out rule files, and see how customers and teams stand.

The page is plain ES modules and CSS in `static/`, hand-written, with no build step and no
third-party code; it talks only to the public GraphQL API at /graphql.  `routes` serves it.
"""
