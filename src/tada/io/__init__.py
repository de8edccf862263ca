"""Files in and out, none of them about merging: atomic writers and the JSON/YAML readers
(:mod:`.files`), the disk-backed tensor spool of the engine (:mod:`.spool`) and the Hugging Face
hub (:mod:`.hub`: hub ids, reachability, uploads). Every other layer may import it; it imports
nothing of tada but errors and the private helpers."""
