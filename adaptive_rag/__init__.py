"""adaptive-rag: answers questions over document collections and decides, per query, how much
machinery (closed-book, RAG, long context) the answer deserves.

Importing the package is cheap: heavy libraries (torch, onnxruntime, qdrant) load where used.
"""

__version__ = "0.1.0"
