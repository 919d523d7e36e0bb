//! Secrets in text that is printed: a connection URL's password, in the userinfo
//! (`postgres://ann:s3cret@host/db`) or as a query parameter (`?password=s3cret`,
//! `&sslpassword=…`), is replaced by `***`.

/// `url` with every password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let mut out = match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s && url[s + 3..at].contains(':') => {
            let user = url[s + 3..at].split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    };
    if let Some(q) = out.find('?') {
        let (head, query) = out.split_at(q + 1);
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => format!("{k}=***"),
                _ => p.to_owned(),
            })
            .collect();
        out = format!("{head}{}", params.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_replaced_wherever_they_are() {
        assert_eq!(redact_url("postgres://ann:s3cret@h:5432/db"), "postgres://ann:***@h:5432/db");
        assert_eq!(redact_url("postgres://h/db?user=ann&password=s3cret"), "postgres://h/db?user=ann&password=***");
        assert_eq!(
            redact_url("postgres://ann:a@b@h/db?sslmode=require&sslpassword=x"),
            "postgres://ann:***@h/db?sslmode=require&sslpassword=***"
        );
        assert_eq!(redact_url("postgres://ann@h/db"), "postgres://ann@h/db");
        assert_eq!(redact_url("sqlite:///tmp/e.db"), "sqlite:///tmp/e.db");
    }
}
