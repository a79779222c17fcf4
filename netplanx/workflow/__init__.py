"""The use cases behind the commands: sessions, apply with confirm or revert, history, doctor."""
