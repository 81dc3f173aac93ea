"""The SII's certification process (DOMAIN.md §16): the set de pruebas read (`setfile`) and
turned into documents (`plan`). Pure: no Django."""
