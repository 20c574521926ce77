//! Comment text is Markdown. Responses carry it rendered (`content_html`): CommonMark with
//! tables, strikethrough and task lists by pulldown-cmark, then sanitised by ammonia (its
//! allow-list: no raw HTML beyond it, no `<script>`, no event attributes, no `javascript:`
//! links; links get `rel="noopener noreferrer nofollow"`). The stored text stays as written.

use pulldown_cmark::{html, Options, Parser};

/// `content` rendered to safe HTML.
pub fn render(content: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let parser = Parser::new_ext(content, options);
    let mut unsafe_html = String::with_capacity(content.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .clean(&unsafe_html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_becomes_html_without_anything_that_runs() {
        let html = render(
            "**bold** [site](https://example.com) [x](javascript:alert(1))\n\n\
             <script>alert(1)</script><img src=x onerror=alert(1)>",
        );
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://example.com" rel="noopener noreferrer nofollow">site</a>"#
            ),
            "{html}"
        );
        for bad in ["<script", "javascript:", "onerror"] {
            assert!(!html.contains(bad), "{bad} in {html}");
        }
    }
}
