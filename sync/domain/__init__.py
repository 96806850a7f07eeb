"""The portal's pure vocabulary: entity types, the mapping language, endpoint paths.

Nothing here touches the database or the network, so models, clients and services all
import it (it is the bottom layer of ``sync``; see docs/architecture.md).
"""
