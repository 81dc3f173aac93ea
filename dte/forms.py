from django import forms

MAX_UPLOAD = 1024 * 1024


class _Upload(forms.Form):
    file = forms.FileField(label="Archivo")

    def clean_file(self) -> bytes:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            raise forms.ValidationError("El archivo es demasiado grande (máximo 1 MB).")
        return upload.read()


class CafUploadForm(_Upload):
    file = forms.FileField(label="Archivo CAF (XML descargado del SII)")


class CertificateUploadForm(_Upload):
    file = forms.FileField(label="Certificado digital (.pfx o .p12)")
    password = forms.CharField(label="Contraseña", widget=forms.PasswordInput, strip=False)
