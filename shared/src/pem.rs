//! CA bundles as EKS and kubeconfigs give them: base64 of PEM text, which
//! may hold several certificates. The kube client wants DER.

use base64::Engine as _;

use crate::domain::InvalidValue;

const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
const END: &str = "-----END CERTIFICATE-----";

/// Decodes base64-of-PEM (EKS `certificateAuthority.data`) into DER certificates.
pub fn certificates_from_ca_data(ca_data: &str) -> Result<Vec<Vec<u8>>, InvalidValue> {
    let invalid = |rule| InvalidValue { kind: "CA data", value: String::new(), rule };
    let pem = base64::engine::general_purpose::STANDARD
        .decode(ca_data.trim())
        .map_err(|_| invalid("must be base64"))?;
    let pem = String::from_utf8(pem).map_err(|_| invalid("must be PEM text"))?;
    certificates_from_pem(&pem)
}

/// Every `CERTIFICATE` block of a PEM text, as DER.
pub fn certificates_from_pem(pem: &str) -> Result<Vec<Vec<u8>>, InvalidValue> {
    let invalid = |rule| InvalidValue { kind: "PEM bundle", value: String::new(), rule };
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let end = after.find(END).ok_or_else(|| invalid("a certificate block is not closed"))?;
        let body: String = after[..end].chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| invalid("a certificate block is not base64"))?;
        certificates.push(der);
        rest = &after[end + END.len()..];
    }
    if certificates.is_empty() {
        return Err(invalid("holds no certificate"));
    }
    Ok(certificates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_certificate_of_a_bundle() {
        let pem = format!("{BEGIN}\nAAEC\nAw==\n{END}\ntrailing\n{BEGIN}\nBAU=\n{END}\n");
        assert_eq!(certificates_from_pem(&pem).unwrap(), vec![vec![0, 1, 2, 3], vec![4, 5]]);
        let data = base64::engine::general_purpose::STANDARD.encode(&pem);
        assert_eq!(certificates_from_ca_data(&data).unwrap().len(), 2);
    }

    #[test]
    fn refuses_what_is_not_a_bundle() {
        assert!(certificates_from_pem("nothing here").is_err());
        assert!(certificates_from_pem(&format!("{BEGIN}\nAAEC")).is_err());
        assert!(certificates_from_pem(&format!("{BEGIN}\n!!\n{END}")).is_err());
        assert!(certificates_from_ca_data("%%%").is_err());
    }
}
