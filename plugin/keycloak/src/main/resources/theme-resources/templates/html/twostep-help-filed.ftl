<#import "template.ftl" as layout>
<@layout.emailLayout>
${kcSanitize(msg("twostepHelpFiledBodyHtml", realmName, twostepAskedAt, twostepAddress))?no_esc}
</@layout.emailLayout>
