"""The CNI contract: request parsing, version rules, results, errors and verb dispatch.

Pure functions over data wherever possible; the only side effects here are reading the
environment and stdin, printing the answer, and executing IPAM delegates.
"""
