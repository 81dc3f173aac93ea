"""The customs data of an export, checked field by field (erp.exports)."""

from erp.exports import clean_aduana, currency_problem


def test_clean_customs_data_is_typed():
    clean, errors = clean_aduana(
        {
            "clausula_venta": "05",
            "total_clausula": "30276.00",
            "puerto_embarque": 906,
            "rut_cia_transporte": "96.790.240-3",
            "nombre_transporte": "  MSC ANTONELLA ",
            "total_bultos": "3",
            "marcas": "",
        }
    )
    assert errors == {}
    assert clean == {
        "clausula_venta": 5,
        "total_clausula": "30276.00",
        "puerto_embarque": 906,
        "rut_cia_transporte": "96790240-3",
        "nombre_transporte": "MSC ANTONELLA",
        "total_bultos": 3,
    }


def test_each_wrong_field_says_why():
    _, errors = clean_aduana(
        {
            "clausula_venta": 99,
            "peso_bruto": "10.123",
            "tara": "-1",
            "booking": "X" * 21,
            "rut_cia_transporte": "1-1",
            "flete": "0",
            "color": "rojo",
        }
    )
    assert errors == {
        "aduana.clausula_venta": "Cláusula de venta: código desconocido en la tabla de Aduana.",
        "aduana.peso_bruto": "Peso bruto: máximo 2 decimales.",
        "aduana.tara": "Tara: debe ser mayor que cero.",
        "aduana.booking": "Booking: máximo 20 caracteres.",
        "aduana.rut_cia_transporte": errors["aduana.rut_cia_transporte"],
        "aduana.flete": "Flete: debe ser mayor que cero.",
        "aduana.color": "Campo desconocido.",
    }
    assert errors["aduana.rut_cia_transporte"].startswith("RUT compañía transportista:")
    assert clean_aduana("texto") == ({}, {"aduana": "Los datos de Aduana deben ser un objeto."})


def test_currencies():
    assert currency_problem("DOLAR USA") == ""
    assert "no pesos" in currency_problem("PESO CL")
    assert "ya no circula" in currency_problem("DRACMA")  # replaced by the euro
    assert "desconocida" in currency_problem("DOBLON")
